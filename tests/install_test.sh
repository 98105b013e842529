#!/bin/sh
# make install / make uninstall, checked from outside: installs this build into a temporary prefix, compiles
# every installed header on its own, builds tests/install/use_clipnn.c with `pkg-config --cflags --libs
# clipnn` only (PKG_CONFIG_PATH at the prefix), once against libclipnn.a and once against libclipnn.so, runs
# both (and the in-tree build the README gives), then checks that `make uninstall` removes every installed file; and the same with DESTDIR staging.
# Run by the Check suite "install" with CLIPNN_MAKE (how to call make on this build), CLIPNN_CC and
# CLIPNN_LDSAN (the sanitizer link flags of a SAN=1 build) from `make test`. Prints "install test: ok".
set -eu
here=$(cd "$(dirname "$0")" && pwd)
MAKE_CMD=${CLIPNN_MAKE:-make -s --no-print-directory -C $here/..}
CC=${CLIPNN_CC:-cc}
LDSAN=${CLIPNN_LDSAN:-}
tmp=$(mktemp -d /tmp/cn-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "install test: $*" >&2; exit 1; }
files_under() { (cd "$1" && find . \( -type f -o -type l \) | sort); }

prefix=$tmp/prefix
$MAKE_CMD install PREFIX="$prefix" >/dev/null || fail "make install PREFIX=$prefix failed"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
unset PKG_CONFIG_LIBDIR 2>/dev/null || true
version=$(pkg-config --modversion clipnn) || fail "pkg-config cannot find clipnn.pc"
major=${version%%.*}
for f in bin/clipnn lib/libclipnn.a "lib/libclipnn.so.$version" share/man/man1/clipnn.1 include/clipnn/clipnn.h; do
    [ -f "$prefix/$f" ] || fail "$f not installed"
done
[ "$(readlink "$prefix/lib/libclipnn.so.$major")" = "libclipnn.so.$version" ] || fail "libclipnn.so.$major link"
[ "$(readlink "$prefix/lib/libclipnn.so")" = "libclipnn.so.$major" ] || fail "libclipnn.so dev link"
readelf -d "$prefix/lib/libclipnn.so.$version" | grep -q "SONAME.*\[libclipnn.so.$major\]" || fail "soname is not libclipnn.so.$major"
"$prefix/bin/clipnn" --version | grep -q "clipnn $version" || fail "installed clipnn --version"

# Every public header compiles on its own with the package's flags only.
cflags=$(pkg-config --cflags clipnn)
for h in $(cd "$prefix/include" && find clipnn -name '*.h' | sort); do
    printf '#include <%s>\nint main(void) { return 0; }\n' "$h" > "$tmp/h.c"
    # shellcheck disable=SC2086
    $CC -std=c11 -Wall -Wextra -Werror -fsyntax-only $cflags "$tmp/h.c" || fail "$h does not compile on its own"
done

expect="clipnn $version: norm_pre 5 norm_post 1 coef 0.2 clipped 1 grad 0.6 0.8"
src="$here/install/use_clipnn.c"
# Static: the same pkg-config line with --static; -l:libclipnn.a picks the archive where the linker would
# prefer the shared library installed beside it (GNU ld).
libs=$(pkg-config --static --libs clipnn | sed 's/-lclipnn\b/-l:libclipnn.a/')
# shellcheck disable=SC2086
$CC -std=c11 -o "$tmp/static" "$src" $cflags $LDSAN $libs || fail "static build failed"
readelf -d "$tmp/static" | grep -q 'NEEDED.*libclipnn' && fail "static build needs libclipnn.so"
out=$("$tmp/static") || fail "static program failed: $out"
[ "$out" = "$expect" ] || fail "static program printed '$out', expected '$expect'"
# Shared.
# shellcheck disable=SC2086
$CC -std=c11 -o "$tmp/shared" "$src" $cflags $LDSAN $(pkg-config --libs clipnn) || fail "shared build failed"
readelf -d "$tmp/shared" | grep -q "NEEDED.*\[libclipnn.so.$major\]" || fail "shared build does not need libclipnn.so.$major"
out=$(LD_LIBRARY_PATH="$prefix/lib" "$tmp/shared") || fail "shared program failed: $out"
[ "$out" = "$expect" ] || fail "shared program printed '$out', expected '$expect'"
LD_LIBRARY_PATH="$prefix/lib" ldd "$tmp/shared" | grep -q "libclipnn.so.$major => $prefix/lib/" || fail "shared program does not load $prefix/lib/libclipnn.so.$major"

# In the source tree, without installing (the README's command): <clipnn/clipnn.h> from BUILD/include.
build=${CLIPNN_BUILD:-$here/../build}
# shellcheck disable=SC2086
$CC -std=c11 -I"$build/include" -o "$tmp/intree" "$src" "$build/libclipnn.a" $LDSAN \
    $(pkg-config --cflags --libs openblas libcjson) -lm || fail "in-tree build failed"
out=$("$tmp/intree") || fail "in-tree program failed: $out"
[ "$out" = "$expect" ] || fail "in-tree program printed '$out', expected '$expect'"

$MAKE_CMD uninstall PREFIX="$prefix" >/dev/null || fail "make uninstall failed"
left=$(files_under "$prefix")
[ -z "$left" ] || fail "make uninstall left: $left"
[ ! -d "$prefix/include/clipnn" ] || fail "make uninstall left include/clipnn"

# DESTDIR staging: files land under DESTDIR/PREFIX, clipnn.pc names the final PREFIX.
stage=$tmp/stage
$MAKE_CMD install DESTDIR="$stage" PREFIX=/usr/local >/dev/null || fail "make install DESTDIR failed"
[ -f "$stage/usr/local/include/clipnn/clip/clip.h" ] || fail "DESTDIR install: headers missing"
grep -qx 'prefix=/usr/local' "$stage/usr/local/lib/pkgconfig/clipnn.pc" || fail "DESTDIR install: clipnn.pc prefix"
n=$(files_under "$stage" | wc -l)
[ "$n" -ge 19 ] || fail "DESTDIR install: only $n files"
$MAKE_CMD uninstall DESTDIR="$stage" PREFIX=/usr/local >/dev/null || fail "make uninstall DESTDIR failed"
left=$(files_under "$stage")
[ -z "$left" ] || fail "make uninstall DESTDIR left: $left"
echo "install test: ok ($n files installed and removed)"
