#!/usr/bin/env bash
# Fetches glibc 2.31 (Debian 11's libc6 and libc6-dev, through apt, no root needed) into a
# sysroot, for scripts/device/glibc-2.31.cmake: an addon linked against it needs
# glibc 2.31 or later at run time, whatever glibc this machine has. Prints the sysroot's path.
#
#   bash scripts/device/glibc-sysroot.sh   (into ~/.cache/craftgrad/glibc-2.31)
set -euo pipefail
dir=$HOME/.cache/craftgrad/glibc-2.31
if [ -e "$dir/lib/x86_64-linux-gnu/libc.so.6" ]; then echo "$dir"; exit 0; fi
[ "$(uname -m)" = x86_64 ] || { echo "glibc-sysroot.sh: only x86_64 is supported (this is $(uname -m))" >&2; exit 1; }

apt_dir=$(mktemp -d)
trap 'rm -rf "$apt_dir"' EXIT
mkdir -p "$apt_dir/lists/partial" "$apt_dir/debs"
echo 'deb http://deb.debian.org/debian bullseye main' > "$apt_dir/sources.list"
o=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
   -o "Dir::State::Lists=$apt_dir/lists" -o APT::Architecture=amd64 -o Debug::NoLocking=1
   -o APT::Sandbox::User=root)  # download as this user: _apt cannot write into mktemp's folder
apt-get "${o[@]}" -qq update >&2
# Debian 11's versions (apt would otherwise pick this machine's installed ones). libstdc++6
# and libgcc-s1 (GCC 10) complete a glibc 2.31 run-time root, in which
# test/addon-glibc.test.mjs loads the addon.
(cd "$apt_dir/debs" && for pkg in libc6 libc6-dev libstdc++6 libgcc-s1; do
  version=$(apt-cache "${o[@]}" madison "$pkg" | awk -F'|' '$3 ~ /bullseye/ { gsub(/ /, "", $2); print $2; exit }')
  [ -n "$version" ] || { echo "glibc-sysroot.sh: $pkg is not in Debian bullseye's index" >&2; exit 1; }
  apt-get "${o[@]}" -qq download "$pkg=$version" >&2
done)
# Unpack into a temporary folder and move it into place only when complete.
tmp="$dir.partial.$$"
rm -rf "$tmp"; mkdir -p "$tmp"
for deb in "$apt_dir"/debs/*.deb; do dpkg-deb -x "$deb" "$tmp"; done
# Absolute symlinks (libpthread.so -> /lib/...) would point into this machine's glibc.
find "$tmp" -type l -lname '/*' | while read -r link; do
  ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$tmp$(readlink "$link")")" "$link"
done
mkdir -p "$(dirname "$dir")"
rm -rf "$dir"; mv "$tmp" "$dir"
echo "$dir"
