# Checks of the guide's "Domain & HTTPS" items (sourced by checks.sh).
# Managed by srq-hpn-deploy. Changes made here are overwritten on the next deploy.

# The domain the checklist was asked about (the operator's setting), else the deployed one.
expected_domain() { echo "${EXPECTED_DOMAIN:-$DOMAIN}"; }

# DOMAIN environment variable set correctly: in .env.production and in Caddy's container.
check_domain() {
	local wanted in_env caddy in_caddy=""
	wanted=$(expected_domain)
	if [ "${ROLE:-server}" = edge ]; then  # the edge's Caddyfile names the site itself
		if grep -qxF "$wanted {" "$STATE_DIR/edge/Caddyfile" 2>/dev/null; then
			result pass "the edge's Caddyfile serves $wanted"
		else
			result fail "the edge's Caddyfile ($STATE_DIR/edge/Caddyfile) does not serve $wanted: deploy to apply the settings"
		fi
		return
	fi
	in_env=$(env_value DOMAIN)
	caddy=$(service_container "$CADDY_SERVICE")
	if [ -n "$caddy" ]; then
		in_caddy=$(docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$caddy" 2>/dev/null |
			sed -n 's/^DOMAIN=//p')
	fi
	if [ -z "$in_env" ]; then
		result fail "DOMAIN is not set in $APP_DIR/$ENV_FILE"
	elif [ "$in_env" != "$wanted" ]; then
		result fail "DOMAIN is $in_env in $ENV_FILE, but the settings say $wanted: deploy to apply them"
	elif [ -n "$caddy" ] && [ "$in_caddy" != "$in_env" ]; then
		result fail "Caddy's container runs with DOMAIN=${in_caddy:-(unset)}, $ENV_FILE says $in_env: recreate it (deploy)"
	else
		local where="$ENV_FILE"
		[ -z "$caddy" ] || where+=" and in the Caddy container"
		result pass "DOMAIN=$in_env in $where"
	fi
}

# Domain DNS pointing to the server IP, where it can be told from here.
check_dns() {
	local domain addresses mine address resolved here
	domain=$(expected_domain)
	case $domain in
	*.test | *.example | *.invalid | *.localhost | *.local | *.internal | *.home.arpa)
		result cannot-check "$domain is a reserved name (.${domain##*.}), never in public DNS; not looked up"
		return
		;;
	esac
	if [ "$CADDY_TLS" = internal ]; then
		result cannot-check "caddy_tls is internal (Caddy's own CA): $domain need not be in public DNS; not looked up"
		return
	fi
	addresses=$(timeout 10 getent ahosts "$domain" 2>/dev/null | awk '{print $1}' | sort -u)
	if [ -z "$addresses" ]; then
		result fail "$domain does not resolve (asked from this server): add an A record with this server's address"
		return
	fi
	mine=$(ip -o addr show scope global 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | sort -u)
	resolved=$(words <<<"$addresses")
	here=$(words <<<"$mine")
	for address in $addresses; do
		if grep -qxF "$address" <<<"$mine"; then
			result pass "$domain resolves to $resolved, an address of this server"
			return
		fi
	done
	result warn "$domain resolves to $resolved, not an address of this server ($here): right only behind NAT or a proxy that forwards 80 and 443 here"
}

# Caddy container running and healthy.
check_caddy() {
	local name status health started code since
	read -r name status health started code < <(service_state "$CADDY_SERVICE")
	if [ -z "${name:-}" ]; then
		result fail "the $CADDY_SERVICE service has no container: docker compose --env-file $ENV_FILE up -d $CADDY_SERVICE"
		return
	fi
	since=$(in_words $(($(date +%s) - $(epoch "$started"))))
	if [ "$status" != running ]; then
		result fail "$name is $status (exit code $code): nothing answers on 80 and 443 (docker compose --env-file $ENV_FILE up -d $CADDY_SERVICE)"
	elif [ "$health" = unhealthy ]; then
		result fail "$name is running but unhealthy (docker logs $name)"
	elif [ "$health" = none ]; then
		result pass "$name running for $since (no healthcheck of its own: HTTPS is checked on the next line)"
	else
		result pass "$name running for $since, $health"
	fi
}

# HTTPS working, with a certificate valid for the domain, and its days until expiry.
check_https() {
	local domain tmp out verify code trust end start now remaining lifetime verdict issuer
	domain=$DOMAIN
	# Nothing else serves 443: with Caddy stopped, HTTPS is down (a fail, not a
	# cannot-check: the monitor alerts it, and its recovery once Caddy is back).
	if ! service_running "$CADDY_SERVICE"; then
		result fail "Caddy is not running: nothing serves https://$domain/ (see the caddy line)"
		return
	fi
	tmp=$(mktemp -d)
	local ca_options=()
	trust="the system's CAs"
	if [ "$CADDY_TLS" = internal ]; then
		docker exec "$(service_container "$CADDY_SERVICE")" cat "$CADDY_ROOT_CA" >"$tmp/ca" 2>/dev/null
		ca_options=(-CAfile "$tmp/ca")
		trust="Caddy's internal CA"
	elif [ -n "${ACME_CA_ROOT:-}" ]; then
		ca_options=(-CAfile "$ACME_CA_ROOT")
		trust="the ACME server's root, caddy_acme_ca_root"
	fi
	out=$(timeout 15 openssl s_client -connect 127.0.0.1:443 -servername "$domain" -verify_hostname "$domain" \
		"${ca_options[@]}" </dev/null 2>&1)
	printf '%s\n' "$out" | openssl x509 -noout -enddate -startdate -issuer -nameopt oneline >"$tmp/cert" 2>/dev/null
	verify=$(sed -n 's/^ *Verify return code: //p' <<<"$out" | tail -n 1)
	code=$(curl -sk -o /dev/null -m 10 -w '%{http_code}' --resolve "$domain:443:127.0.0.1" "https://$domain/" 2>/dev/null)
	end=$(epoch "$(sed -n 's/^notAfter=//p' "$tmp/cert")")
	start=$(epoch "$(sed -n 's/^notBefore=//p' "$tmp/cert")")
	issuer=$(sed -n 's/^issuer=//p' "$tmp/cert" | sed 's/.*CN *= *//')
	rm -rf "$tmp"
	if [ -z "$end" ]; then
		local why
		why=$(grep -m1 -iE 'error|refused|errno' <<<"$out" || echo 'no TLS answer')
		if [ "$CADDY_TLS" != internal ]; then
			why+=" (Caddy has not got one from the ACME server yet: docker logs $(service_state "$CADDY_SERVICE" | awk '{print $1}') says why)"
		fi
		result fail "no certificate for $domain on 127.0.0.1:443: $why"
		return
	fi
	now=$(date +%s)
	remaining=$((end - now))
	lifetime=$((end - start))
	local expiry
	expiry="expires in $(in_words "$remaining") ($(date -u -d "@$end" '+%Y-%m-%d %H:%M UTC'); lifetime $(in_words "$lifetime"))"
	if [ "$verify" != "0 (ok)" ]; then
		result fail "the certificate for $domain is not valid: ${verify:-no verification} (issuer $issuer, checked against $trust); it $expiry"
		return
	fi
	verdict=$(judge_certificate "$remaining" "$lifetime" "$CERT_WARN_DAYS" "$CERT_FAIL_DAYS")
	local evidence="https://$domain/ answers $code; certificate valid for $domain (issuer $issuer, checked against $trust), $expiry"
	if [ "$verdict" = pass ]; then
		result pass "$evidence"
	else
		result "$verdict" "$evidence: its renewal is overdue (Caddy renews the certificates it manages a third of their lifetime before expiry; see docker logs $(service_state "$CADDY_SERVICE" | awk '{print $1}'))"
	fi
}

# HTTP redirects to HTTPS.
check_http_redirect() {
	local domain answer code location
	domain=$DOMAIN
	if ! service_running "$CADDY_SERVICE"; then
		result fail "Caddy is not running: nothing answers http://$domain/ (see the caddy line)"
		return
	fi
	answer=$(curl -sS -o /dev/null -m 10 -w '%{http_code} %{redirect_url}' --resolve "$domain:80:127.0.0.1" \
		"http://$domain/" 2>&1)
	code=${answer%% *}
	location=${answer#* }
	case $code in
	301 | 302 | 307 | 308)
		if [[ $location == "https://$domain"* ]]; then
			result pass "http://$domain/ answers $code, to $location"
			return
		fi
		;;
	esac
	result fail "http://$domain/ answers ${answer:-nothing} (wanted a redirect to https://$domain/)"
}
