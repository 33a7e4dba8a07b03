# The inventory group `app`: app servers behind an edge (README, "Several servers").
srq_hpn_role = "app"
