# Settings of the local sandbox group (see README, "Try it"): Caddy's internal CA
# instead of Let's Encrypt, and Debian's own Docker packages.
srq_hpn_domain = "srq-hpn.test"
caddy_tls = "internal"
docker_install_method = "distro"
