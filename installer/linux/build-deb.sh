#!/usr/bin/env bash
# Build the .deb from the PyInstaller bundle with dpkg-deb alone (no debhelper).
#   installer/linux/build-deb.sh BUNDLE_DIR OUT_DIR PYTHON
set -euo pipefail
bundle=$1 out=$2 python=${3:-python3}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
version=$("$python" -c 'import ghubai_tray; print(ghubai_tray.__version__)')
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

install -d "$stage/opt" "$stage/usr/bin" "$stage/DEBIAN"
cp -a "$bundle" "$stage/opt/ghubai-tray"
ln -s /opt/ghubai-tray/ghubai-tray "$stage/usr/bin/ghubai-tray"
install -Dm644 "$here/ghubai-tray.desktop" "$stage/usr/share/applications/ghubai-tray.desktop"
for size in 16 24 32 48 64 128 256; do
  install -Dm644 "$root/assets/ghubai-$size.png" \
    "$stage/usr/share/icons/hicolor/${size}x${size}/apps/ghubai-tray.png"
done
install -Dm644 "$here/ghubai-tray.service" "$stage/usr/lib/systemd/user/ghubai-tray.service"
install -d "$stage/usr/share/man/man1"
"$python" "$here/make_manpage.py" | gzip -9n > "$stage/usr/share/man/man1/ghubai-tray.1.gz"
install -Dm644 "$here/copyright" "$stage/usr/share/doc/ghubai-tray/copyright"

# Modes set here, not taken from the builder's umask (077 would make a package no other
# user can run): directories 755, files 644, or 755 where the bundle made them executable.
# Owners are root's (dpkg-deb --root-owner-group, below).
chmod 755 "$stage"
find "$stage" -path "$stage/DEBIAN" -prune -o -type d -exec chmod 755 {} +
find "$stage" -path "$stage/DEBIAN" -prune -o -type f -perm /u+x -exec chmod 755 {} +
find "$stage" -path "$stage/DEBIAN" -prune -o -type f ! -perm /u+x -exec chmod 644 {} +

size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" "$here/control.in" > "$stage/DEBIAN/control"
# Refresh the icon cache where one exists; nothing else to set up (settings are per user).
cat > "$stage/DEBIAN/postinst" <<'POST'
#!/bin/sh
set -e
if command -v gtk-update-icon-cache >/dev/null 2>&1; then
  gtk-update-icon-cache -q /usr/share/icons/hicolor || true
fi
POST
cp "$stage/DEBIAN/postinst" "$stage/DEBIAN/postrm"
chmod 755 "$stage/DEBIAN" "$stage/DEBIAN/postinst" "$stage/DEBIAN/postrm"
chmod 644 "$stage/DEBIAN/control"

mkdir -p "$out"
deb="$out/ghubai-tray_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
