# The inventory group `app`: app servers behind the edge (docs/topology.md).
srq_hpn_role = "app"
