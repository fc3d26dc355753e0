#!/usr/bin/env bash
# Install (or remove) the gbcs-hil ZigBee dongle udev rules, then make udev apply them.
#
#   sudo udev/install.sh              install into /etc/udev/rules.d and re-trigger tty devices
#   sudo udev/install.sh --uninstall  remove them again
#   options: --dest DIR (default /etc/udev/rules.d), --no-reload (just copy/remove the file)
#   root is needed only for a folder the user cannot write and for reloading udev:
#   udev/install.sh --dest DIR --no-reload works for anyone who may write DIR
set -euo pipefail

RULES=61-gbcs-hil-zigbee.rules
HERE=$(cd "$(dirname "$0")" && pwd)
DEST=/etc/udev/rules.d
ACTION=install
RELOAD=1
ARGS=("$@")

usage() {
    sed -n '2,8s/^# \{0,1\}//p' "$0"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --uninstall) ACTION=uninstall ;;
        --no-reload) RELOAD=0 ;;
        --dest)
            [ $# -ge 2 ] || { echo "install.sh: --dest needs a folder" >&2; exit 2; }
            DEST=$2
            shift
            ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ -z "$DEST" ]; then
    echo "install.sh: --dest needs a folder, not an empty string (try --help)" >&2
    exit 2
fi
if [ -e "$DEST" ] && [ ! -d "$DEST" ]; then
    echo "install.sh: --dest $DEST is not a folder" >&2
    exit 2
fi

# The folder DEST is in, or would be created in: what the user must be able to write.
writable_dest() {
    local dir=$DEST
    while [ ! -e "$dir" ]; do
        dir=$(dirname -- "$dir")
    done
    [ -d "$dir" ] && [ -w "$dir" ] && [ -x "$dir" ]
}

# Root only for what needs it: udev's own folders and telling udevd to reload.
if [ "$(id -u)" -ne 0 ]; then
    why=""
    if [ "$RELOAD" = 1 ]; then
        why="reloading udev needs root (add --no-reload to only copy the file)"
    elif ! writable_dest; then
        why="$DEST is not writable by $(id -un 2>/dev/null || id -u)"
    fi
    if [ -n "$why" ]; then
        echo "install.sh: $why; nothing was changed." >&2
        echo "Run it again with sudo:  sudo $0${ARGS[*]:+ ${ARGS[*]}}" >&2
        exit 1
    fi
fi

if [ "$ACTION" = install ]; then
    install -d -m 0755 "$DEST"
    install -m 0644 "$HERE/$RULES" "$DEST/$RULES"
    echo "installed $DEST/$RULES"
else
    if [ -e "$DEST/$RULES" ]; then
        rm -f "$DEST/$RULES"
        echo "removed $DEST/$RULES"
    else
        echo "$DEST/$RULES was not installed; nothing to remove"
    fi
fi

if [ "$RELOAD" = 1 ]; then
    if ! command -v udevadm >/dev/null 2>&1; then
        echo "install.sh: udevadm not found; the rules apply when udev next starts" >&2
    elif udevadm control --reload-rules 2>/dev/null; then
        # Only tty devices: re-running every rule on the machine is not our business.
        udevadm trigger --subsystem-match=tty --action=add
        echo "udev rules reloaded; plugged-in dongles re-triggered (see ls -l /dev/zigbee)"
    else
        echo "install.sh: udevd is not running (a container?); the rules apply when it starts" >&2
    fi
fi

if [ "$ACTION" = install ] && [ -n "${SUDO_USER:-}" ] && ! id -nG "$SUDO_USER" | grep -qw dialout; then
    echo "note: $SUDO_USER is not in group dialout; run: sudo usermod -aG dialout $SUDO_USER" \
        "(then log in again), or rely on the uaccess tag for the desktop session's user"
fi
