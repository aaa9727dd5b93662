#!/usr/bin/env bash
# Install what zkwarden's tests need: Debian's ZooKeeper server and a Java runtime.
#
#   scripts/install-zookeeper.sh               server + JRE (for `--features testing`)
#   scripts/install-zookeeper.sh --with-peers  also the C client headers, kazoo and Curator,
#                                              used by interoperability tests
#   scripts/install-zookeeper.sh --with-kerberos  also what cargo feature `kerberos` builds
#                                              with (MIT GSS-API headers, libclang) and the
#                                              MIT KDC its tests start
#
# Safe to run repeatedly: when everything is already present it does not touch apt at all.
set -euo pipefail

ZK_JAR=/usr/share/java/zookeeper.jar
WITH_PEERS=0
WITH_KERBEROS=0

usage() {
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
}

for arg in "$@"; do
    case "$arg" in
        --with-peers) WITH_PEERS=1 ;;
        --with-kerberos) WITH_KERBEROS=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "install-zookeeper: unknown argument: $arg" >&2
            usage >&2
            exit 2
            ;;
    esac
done

# Run a command as root: directly when we are root, through sudo when it exists.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "install-zookeeper: need root to run '$*' and sudo is not available" >&2
        exit 1
    fi
}

APT_UPDATED=0
apt_install() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        echo "install-zookeeper: running apt-get update"
        as_root apt-get update
        APT_UPDATED=1
    fi
    echo "install-zookeeper: installing $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# A package is wanted when dpkg does not report it as installed.
is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# True when apt has downloaded package lists at least once.
have_package_lists() {
    compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null
}

# --- the server and a JRE -------------------------------------------------------------
if [ -f "$ZK_JAR" ] && command -v java >/dev/null 2>&1; then
    echo "install-zookeeper: ZooKeeper ($ZK_JAR) and java ($(command -v java)) already present"
else
    apt_install zookeeper default-jre-headless
fi

# --- optional peers for interoperability tests ----------------------------------------
if [ "$WITH_PEERS" -eq 1 ]; then
    missing=()
    for pkg in libzookeeper-mt-dev python3-kazoo; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    for pkg in libcurator-framework-java libcurator-recipes-java libcurator-discovery-java; do
        if is_installed "$pkg"; then
            continue
        fi
        # Curator is not packaged in every release; only ask for it when apt knows it.
        # A fresh container may have no package lists at all: fetch them once first.
        if [ "$APT_UPDATED" -eq 0 ] && ! have_package_lists; then
            echo "install-zookeeper: running apt-get update"
            as_root apt-get update
            APT_UPDATED=1
        fi
        if apt-cache show "$pkg" >/dev/null 2>&1; then
            missing+=("$pkg")
        else
            echo "install-zookeeper: package $pkg is not available here, skipping it"
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "install-zookeeper: peer packages already present"
    else
        apt_install "${missing[@]}"
    fi
fi

# --- Kerberos: build deps of cargo feature `kerberos` and the test KDC -------------------
if [ "$WITH_KERBEROS" -eq 1 ]; then
    # libkrb5-dev: the GSS-API headers and library libgssapi links; libclang-dev + clang:
    # bindgen reads the headers; krb5-kdc, krb5-admin-server (kadmin.local), krb5-user (kinit,
    # klist): the throwaway KDC of zkwarden::testing::Kdc.
    missing=()
    for pkg in pkg-config libkrb5-dev libclang-dev clang krb5-kdc krb5-admin-server krb5-user; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "install-zookeeper: Kerberos packages already present"
    else
        apt_install "${missing[@]}"
    fi
fi

echo "install-zookeeper: done"
