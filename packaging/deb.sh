#!/usr/bin/env bash
#
# The Debian package (docs/packaging.md), from a module build.sh has built:
#
# packaging/deb.sh build   build/deb/libnginx-mod-http-clockchain_<version>_<arch>.deb
#                          from build/ngx_http_clockchain_module.so, then lintian
# packaging/deb.sh path    print where that .deb is (or will be)
#
# ./build.sh deb runs it (after building the module and installing
# dpkg-dev, binutils and lintian), then the install test t/90-deb-install.t.
# CLOCKCHAIN_BUILD_DIR and CLOCKCHAIN_MODULE are build.sh's.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD="${CLOCKCHAIN_BUILD_DIR:-$ROOT/build}"
MODULE="${CLOCKCHAIN_MODULE:-$BUILD/ngx_http_clockchain_module.so}"

DEB_PACKAGE=libnginx-mod-http-clockchain
DEB_DIR="$BUILD/deb"

say() { printf '%s\n' "$*" >&2; }

# the package's version: the VERSION file, and nowhere else
deb_version() {
    local v
    v=$(tr -d ' \t\n' <"$ROOT/VERSION")
    if ! [[ $v =~ ^[0-9][0-9A-Za-z.+~-]*$ ]]; then
        say "build.sh: VERSION holds \"$v\", not a Debian version"
        exit 1
    fi
    printf '%s' "$v"
}

deb_file() {
    printf '%s/%s_%s_%s.deb' "$DEB_DIR" "$DEB_PACKAGE" "$(deb_version)" \
        "$(dpkg --print-architecture)"
}

# the runtime libraries of the module as Debian dependencies; dpkg-shlibdeps
# wants a debian/control to run from, so it gets a throwaway one
deb_shlibs() {
    local so=$1 tmp out
    tmp=$(mktemp -d)
    mkdir "$tmp/debian"
    printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' \
        "$DEB_PACKAGE" "$DEB_PACKAGE" >"$tmp/debian/control"
    # the nginx symbols the module uses are the binary's, found at load time
    if ! out=$(cd "$tmp" && dpkg-shlibdeps -O --warnings=1 "$so" 2>"$tmp/log"); then
        cat "$tmp/log" >&2
        rm -rf "$tmp"
        exit 1
    fi
    rm -rf "$tmp"
    printf '%s' "${out#shlibs:Depends=}"
}

# build/deb/libnginx-mod-http-clockchain_<version>_<arch>.deb from a staged
# tree with dpkg-deb, laid out as Debian's own libnginx-mod-* packages are
deb_build() {
    local pkg="$ROOT/packaging/deb" stage="$DEB_DIR/stage"
    local version arch abi nginx_version shlibs deb doc so changelog epoch size
    version=$(deb_version)
    arch=$(dpkg --print-architecture)
    deb=$(deb_file)

    [ -f "$MODULE" ] || { say "build.sh: no $MODULE: ./build.sh deb builds it"; exit 1; }

    # the exact ABI this module was built for: what the installed nginx
    # provides (nginx-abi-1.22.1-7 on Debian 12)
    abi=$(dpkg-query -W -f='${Provides}' nginx | tr ',' '\n' \
          | grep -o 'nginx-abi-[^ ]*' | head -n1 || true)
    if [ -z "$abi" ]; then
        say "build.sh: the installed nginx provides no nginx-abi-*"
        exit 1
    fi
    nginx_version=$(dpkg-query -W -f='${Version}' nginx)

    # file times from the last commit: the same tree gives the same .deb
    epoch=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null \
                                 || stat -c %Y "$ROOT/VERSION")}

    rm -rf "$stage"
    mkdir -p "$stage/DEBIAN"
    so="$stage/usr/lib/nginx/modules/ngx_http_clockchain_module.so"
    install -D -m 0644 "$MODULE" "$so"
    # as dh_strip does; the debug info stays in build/
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$so"
    install -D -m 0644 "$pkg/mod-http-clockchain.conf" \
        "$stage/usr/share/nginx/modules-available/mod-http-clockchain.conf"

    doc="$stage/usr/share/doc/$DEB_PACKAGE"
    install -D -m 0644 "$pkg/copyright" "$doc/copyright"
    install -D -m 0644 "$pkg/examples/clockchain.conf" "$doc/examples/clockchain.conf"
    # a native version (no revision) has changelog.gz, as policy 12.7 asks
    changelog=changelog.gz
    [[ $version == *-* ]] && changelog=changelog.Debian.gz
    {
        printf '%s (%s) unstable; urgency=medium\n\n' "$DEB_PACKAGE" "$version"
        printf '  * ngx_http_clockchain_module %s, built against nginx %s\n' \
            "$version" "$nginx_version"
        printf '    (%s).\n' "$abi"
        printf '  * What changed: the git history of the module.\n\n'
        printf ' -- %s  %s\n' \
            "$(sed -n 's/^Maintainer: //p' "$pkg/control.in")" \
            "$(LC_ALL=C date -u -R -d "@$epoch")"
    } | gzip -9n >"$doc/$changelog"

    install -m 0755 "$pkg/postinst" "$pkg/prerm" "$pkg/postrm" "$stage/DEBIAN/"

    shlibs=$(deb_shlibs "$so")
    # Installed-Size as dpkg-gencontrol counts it: KiB per file, 1 per entry
    size=$(cd "$stage" && find . -path ./DEBIAN -prune -o ! -name . -printf '%y %s\n' \
           | awk '{ n += ($1 == "f") ? int(($2 + 1023) / 1024) : 1 } END { print n }')
    sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" \
        -e "s/@INSTALLED_SIZE@/$size/" -e "s/@NGINX_ABI@/$abi/" \
        -e "s/@SHLIBS@/$shlibs/" "$pkg/control.in" >"$stage/DEBIAN/control"
    (cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' \
        | LC_ALL=C sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
    chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"

    find "$stage" -type d -exec chmod 0755 {} +
    find "$stage" -exec touch -h -d "@$epoch" {} +
    rm -f "$deb"
    SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2

    say "build.sh: lintian $deb"
    # lintian warns that it runs as root, which says nothing about the package
    lintian --fail-on error --display-info "$deb" 2> >(grep -v 'root privileges' >&2) \
        || { say "build.sh: lintian found errors"; exit 1; }
    say "build.sh: built $deb"
    dpkg-deb --field "$deb" Package Version Depends >&2
}

case "${1:-}" in
    build) deb_build ;;
    path) deb_file; echo ;;
    *) say "usage: $0 build|path (./build.sh deb runs it)"; exit 2 ;;
esac
