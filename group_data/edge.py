# The inventory group `edge`: the load balancer in front of the app servers (README, "Several servers").
srq_hpn_role = "edge"
