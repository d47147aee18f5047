#!/usr/bin/env bash
# Fetch permissively licensed non-Python sources for the default model's corpus into
# runs/sources/<name>/: Go (the Go 1.19 standard library, from Debian), Rust (crate sources from
# Debian's librust-*-dev packages), JavaScript/TypeScript (npm packages that ship readable code or
# their .ts sources), and Markdown prose (the Node.js API docs from Debian, plus the packages' own
# READMEs and changelogs). Nothing is installed: .deb files are unpacked with `dpkg -x` and npm
# tarballs with `tar`, in a temporary folder. Idempotent: a source whose folder holds a
# `.fetched` marker is skipped; run again to fetch what is missing. Prints one line per source and
# writes runs/sources/LICENSES.txt (name, version, license, registry; tab-separated).
#   bash scripts/fetch_corpus_sources.sh
# Needs `apt-get update` to have been run once (for apt-get download) and npm.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=runs/sources
mkdir -p "$DEST"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Licenses we take: every source must offer at least one of these (an "A OR B" expression is fine
# when one side is here; anything with AND or WITH is refused rather than interpreted).
ALLOWED="MIT Expat Apache-2.0 BSD-2-Clause BSD-3-Clause ISC PSF-2.0 Python-2.0 0BSD"

license_ok() { # license_ok "MIT OR Apache-2.0"
    local expr=${1//\// OR }
    expr=${expr//(/}; expr=${expr//)/}
    case " $expr " in *" AND "* | *" WITH "* | "  ") return 1 ;; esac
    local alt
    for alt in ${expr// OR / }; do
        case " $ALLOWED " in *" $alt "*) return 0 ;; esac
    done
    return 1
}

have() { # have NAME: already fetched?
    if [ -f "$DEST/$1/.fetched" ]; then
        printf '%-36s already there (%s)\n' "$1" "$(cut -f2,3 "$DEST/$1/.fetched" | tr '\t' ' ')"
        return 0
    fi
    return 1
}

finish() { # finish NAME VERSION LICENSE REGISTRY STAGED_DIR: move into place, print the line
    local name=$1 version=$2 license=$3 registry=$4 staged=$5
    find "$staged" -depth -type d -empty -delete
    mkdir -p "$staged"
    printf '%s\t%s\t%s\t%s\n' "$name" "$version" "$license" "$registry" >"$staged/.fetched"
    rm -rf "${DEST:?}/$name"
    mv "$staged" "$DEST/$name"
    printf '%-36s fetched %s %s (%s, %s)\n' "$name" "$version" "$license" "$registry" \
        "$(du -sh "$DEST/$name" | cut -f1)"
}

apt_version() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}'; }

deb_unpack() { # deb_unpack PKG DIR: download PKG's .deb and unpack it into DIR
    (cd "$WORK" && apt-get download -q "$1" >/dev/null 2>&1) || {
        echo "apt-get download $1 failed (run apt-get update?)" >&2
        return 1
    }
    dpkg -x "$WORK/$1"_*.deb "$2"
    rm -f "$WORK/$1"_*.deb
}

fetch_go() {
    local name=go pkg=golang-1.19-src version
    have $name && return 0
    version=$(apt_version $pkg)
    [ -n "$version" ] && [ "$version" != "(none)" ] || { printf '%-36s not in apt, skipped\n' $name; return 0; }
    deb_unpack $pkg "$WORK/$name.x"
    # Debian's copyright file: "Files: *" is under the Go license (BSD-3-Clause); a few files
    # derived from Plan 9/Inferno (X11, i.e. MIT) and FreeBSD (BSD-2-Clause) are permissive too.
    grep -A2 '^Files: \*$' "$WORK/$name.x/usr/share/doc/$pkg/copyright" | grep -q '^License: Go$'
    mv "$WORK/$name.x/usr/share/go-1.19/src" "$WORK/$name"
    rm -rf "$WORK/$name.x"
    # testdata holds fixtures (often deliberately broken code) and vendor copies other modules.
    find "$WORK/$name" -depth -type d \( -name testdata -o -name vendor \) -exec rm -rf {} +
    find "$WORK/$name" -type f ! -name '*.go' ! -name '*.md' -delete
    rm -f "$WORK/$name/image/jpeg/idct.go"  # under the MPEG Software Simulation Group's terms
    finish $name "$version" "BSD-3-Clause (a few files MIT/X11, BSD-2-Clause)" "Debian $pkg" "$WORK/$name"
}

fetch_rust() { # fetch_rust CRATE (Debian's librust-CRATE-dev)
    local crate=$1 name=rust-$1 pkg=librust-$1-dev version dir license
    have "$name" && return 0
    version=$(apt_version "$pkg")
    [ -n "$version" ] && [ "$version" != "(none)" ] || { printf '%-36s not in apt, skipped\n' "$name"; return 0; }
    deb_unpack "$pkg" "$WORK/$name.x"
    dir=$(find "$WORK/$name.x/usr/share/cargo/registry" -mindepth 1 -maxdepth 1 -type d | head -1)
    license=$(sed -n 's/^license *= *"\(.*\)"/\1/p' "$dir/Cargo.toml" | head -1)
    if ! license_ok "$license"; then
        printf '%-36s license "%s" not permissive, skipped\n' "$name" "$license"
        rm -rf "$WORK/$name.x"
        return 0
    fi
    mv "$dir" "$WORK/$name"
    rm -rf "$WORK/$name.x"
    finish "$name" "$version" "$license" "Debian $pkg" "$WORK/$name"
}

prune_npm() { # prune_npm PACKAGE DIR: drop duplicate builds, data and bundles the corpus need not see
    local dir=$2
    find "$dir" -type f \( -name '*.map' -o -name '*.min.js' \) -delete
    case $1 in
        date-fns) # .cjs/.d.cts duplicate the ESM build; locale/ is data; fp/ is generated wrappers
            rm -rf "$dir/locale" "$dir/fp"
            find "$dir" -type f \( -name '*.cjs' -o -name '*.d.cts' \) -delete ;;
        graphql) # .mjs duplicates the .js build
            find "$dir" -type f -name '*.mjs' -delete ;;
        zod) # ships its TypeScript sources: keep them, drop the compiled copies
            find "$dir" -mindepth 1 -maxdepth 1 ! -name src ! -name '*.md' ! -name package.json \
                -exec rm -rf {} + ;;
        effect) # its sources are 20+ MB: keep the top-level modules of src/ only (no ai-docs etc.)
            find "$dir" -mindepth 1 -maxdepth 1 ! -name src ! -name README.md ! -name package.json \
                -exec rm -rf {} +
            find "$dir/src" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} + ;;
        @tanstack/query-core) # keep the .ts sources, drop build/
            rm -rf "$dir/build" ;;
    esac
}

fetch_npm() { # fetch_npm PACKAGE VERSION
    local pkg=$1 version=$2 name tgz license
    name=npm-$(echo "$pkg" | tr -d @ | tr / -)
    have "$name" && return 0
    mkdir -p "$WORK/$name.x"
    tgz=$(cd "$WORK/$name.x" && npm pack "$pkg@$version" --silent 2>/dev/null | tail -1) || {
        printf '%-36s npm pack %s@%s failed, skipped\n' "$name" "$pkg" "$version"
        return 0
    }
    tar xzf "$WORK/$name.x/$tgz" -C "$WORK/$name.x"
    license=$(node -e 'const p=require(process.argv[1]); console.log(typeof p.license==="string" ? p.license : "")' \
        "$(realpath "$WORK/$name.x/package/package.json")")
    if ! license_ok "$license"; then
        printf '%-36s license "%s" not permissive, skipped\n' "$name" "$license"
        rm -rf "$WORK/$name.x"
        return 0
    fi
    prune_npm "$pkg" "$WORK/$name.x/package"
    mv "$WORK/$name.x/package" "$WORK/$name"
    rm -rf "$WORK/$name.x"
    finish "$name" "$version" "$license" "npm $pkg" "$WORK/$name"
}

fetch_nodejs_doc() { # the Node.js API reference, Markdown (MIT/Expat)
    local name=md-nodejs-api pkg=nodejs-doc version
    have $name && return 0
    version=$(apt_version $pkg)
    [ -n "$version" ] && [ "$version" != "(none)" ] || { printf '%-36s not in apt, skipped\n' $name; return 0; }
    deb_unpack $pkg "$WORK/$name.x"
    grep -A3 '^Files: \*$' "$WORK/$name.x/usr/share/doc/$pkg/copyright" | grep -q '^License: Expat'
    mkdir -p "$WORK/$name"
    local f
    for f in "$WORK/$name.x/usr/share/doc/nodejs/api/"*.md.gz; do
        gzip -dc "$f" >"$WORK/$name/$(basename "$f" .gz)"
    done
    rm -rf "$WORK/$name.x"
    finish $name "$version" MIT "Debian $pkg" "$WORK/$name"
}

# Go: ~30 MB of .go kept by the corpus builder (library, commands and their _test.go files).
fetch_go

# Rust: ~20 MB of crate sources, MIT and/or Apache-2.0 (checked from each Cargo.toml).
for crate in serde serde-derive serde-json regex regex-syntax aho-corasick memchr syn proc-macro2 \
    quote tokio bytes futures-util futures-core futures-channel hyper clap rand itertools \
    hashbrown indexmap anyhow thiserror log nom rayon rayon-core once-cell smallvec \
    crossbeam-channel crossbeam-utils walkdir chrono tracing url toml; do
    fetch_rust "$crate"
done

# JavaScript/TypeScript: readable (unminified) code or .ts sources; versions pinned so a rerun on
# another machine fetches the same files.
while read -r pkg version; do
    fetch_npm "$pkg" "$version"
done <<'EOF'
vscode-languageserver 10.1.2
vscode-languageserver-protocol 3.18.5
vscode-languageserver-types 3.18.5
vscode-jsonrpc 10.0.0
zod 4.6.7
rxjs 7.8.2
effect 4.1.0
@tanstack/query-core 5.108.0
ajv 8.20.0
immer 11.2.10
mobx 7.1.3
date-fns 4.4.0
commander 14.0.3
chalk 5.6.2
eslint 10.15.0
axios 1.21.1
lodash 4.18.1
express 5.3.0
fastify 5.12.8
undici 7.30.2
ws 8.23.0
graphql 16.15.0
svelte 5.57.3
postcss 8.5.33
preact 11.2.0
mocha 12.0.3
EOF

# Markdown prose.
fetch_nodejs_doc

# One line per source fetched so far (name, version, license, registry).
{
    printf 'name\tversion\tlicense\tregistry\n'
    cat "$DEST"/*/.fetched 2>/dev/null | sort
} >"$DEST/LICENSES.txt"
echo "wrote $DEST/LICENSES.txt ($(($(wc -l <"$DEST/LICENSES.txt") - 1)) sources)"
