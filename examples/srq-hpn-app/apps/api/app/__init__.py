"""The srq-hpn sample api."""
