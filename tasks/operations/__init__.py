"""Operations of the srq-hpn stack that pyinfra does not have, by domain (files,
source, config, database, services, release), as pyinfra splits its own."""
