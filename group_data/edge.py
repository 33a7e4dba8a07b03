# The inventory group `edge`: the load balancer in front of the app servers (docs/topology.md).
srq_hpn_role = "edge"
