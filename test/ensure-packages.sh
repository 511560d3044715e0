#!/usr/bin/env bash
# Run by `npm test` first: the Debian packages the tests start must be there. Installs what is
# missing from apt when it can (root, or sudo without a password); otherwise stops with the one
# line that installs them.
set -euo pipefail

# program (or file) to look for:debian-package. chromium-l10n: the interface languages the popup is shown in;
# fonts-wqy-microhei: Chinese glyphs for its screenshots (Persian and Russian are in DejaVu).
needs=(/usr/bin/chromium:chromium /usr/lib/chromium/locales/fa.pak:chromium-l10n /usr/share/fonts/truetype/wqy/wqy-microhei.ttc:fonts-wqy-microhei openssl:openssl curl:curl /usr/sbin/nginx:nginx /usr/sbin/haproxy:haproxy systemd-analyze:systemd /usr/bin/turnserver:coturn /usr/bin/firefox-esr:firefox-esr)

missing=()
for need in "${needs[@]}"; do
  program="${need%%:*}"
  package="${need##*:}"
  if [[ "$program" == /* ]]; then [ -e "$program" ] || missing+=("$package")
  else command -v "$program" >/dev/null || missing+=("$package"); fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

install=(apt-get install -y --no-install-recommends "${missing[@]}")
if [ "$(id -u)" -eq 0 ]; then as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then as_root=(sudo --preserve-env=DEBIAN_FRONTEND)
else
  echo "npm test needs Debian packages it cannot install as $(id -un): run  sudo ${install[*]}" >&2
  exit 1
fi
echo "npm test: installing ${missing[*]} from Debian" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" "${install[@]}"
