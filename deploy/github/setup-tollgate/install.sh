#!/usr/bin/env bash
# Installs the `tollgate` CLI of one release into TOLLGATE_ROOT/bin: the released binary
# for this machine (its SHA-256 checked), or, when the release has none, a build with
# `cargo install --locked` from the tagged source. An install of the same version already
# there (a restored cache) is kept.
#
#   TOLLGATE_VERSION       the release tag, e.g. v0.1.0
#   TOLLGATE_ROOT          where to install (binaries go to $TOLLGATE_ROOT/bin)
#   TOLLGATE_RELEASE_BASE  where releases are downloaded from:
#                          https://github.com/OWNER/REPO/releases/download
#   TOLLGATE_GIT           the repository to build from when no binary fits:
#                          https://github.com/OWNER/REPO
set -euo pipefail

version="${TOLLGATE_VERSION:?set TOLLGATE_VERSION to a release tag such as v0.1.0}"
root="${TOLLGATE_ROOT:?set TOLLGATE_ROOT to the install directory}"
base="${TOLLGATE_RELEASE_BASE:?set TOLLGATE_RELEASE_BASE}"
bin="$root/bin"

if [ -x "$bin/tollgate" ] && [ "$("$bin/tollgate" --version)" = "tollgate ${version#v}" ]; then
	echo "tollgate ${version#v} is installed already (cached)"
	exit 0
fi

case "$(uname -s)-$(uname -m)" in
Linux-x86_64) target=x86_64-unknown-linux-gnu ;;
Linux-aarch64 | Linux-arm64) target=aarch64-unknown-linux-gnu ;;
*) target="" ;;
esac

archive="tollgate-${version}-${target}.tar.gz"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -n "$target" ] &&
	curl -fsSL --retry 3 -o "$work/$archive" "$base/$version/$archive" &&
	curl -fsSL --retry 3 -o "$work/$archive.sha256" "$base/$version/$archive.sha256"; then
	if ! (cd "$work" && sha256sum --check --status "$archive.sha256"); then
		echo "::error::$archive does not match its published SHA-256; not installed"
		exit 1
	fi
	mkdir -p "$bin"
	tar -xzf "$work/$archive" -C "$bin"
	echo "installed the released $archive"
else
	git="${TOLLGATE_GIT:?no released binary for ${target:-this machine}; set TOLLGATE_GIT to build from source}"
	echo "::warning::no released binary of $version for ${target:-$(uname -sm)}: building it with cargo install --locked (several minutes)"
	cargo install --locked --root "$root" --git "$git" --tag "$version" tollgate-cli
fi
"$bin/tollgate" --version
