# Shared by the scripts of the lab OS definition (sourced, POSIX sh).
#
# Every message goes to stderr: create and rename have stdout and stderr in
# the same log file, and export's stdout is the disk image.

LAB_MAGIC="GANETI-RS-LAB-OS"

log() {
  echo "lab-os $SCRIPT: $*" >&2
}

die() {
  log "error: $*"
  exit 1
}

# Scripts take no arguments (verify takes the checks).
no_arguments() {
  case ${1-} in
    -h|--help) usage; exit 0 ;;
  esac
  [ $# -eq 0 ] || { usage; exit 1; }
}

# The environment exactly as the node daemon passed it (the shell's own
# start-up environment when /proc has it), between two marker lines.
log_environment() {
  echo "--- environment of $SCRIPT ---" >&2
  if [ -r "/proc/$$/environ" ]; then
    tr '\000' '\n' < "/proc/$$/environ" | sort >&2
  else
    env | sort >&2
  fi
  echo "--- end of environment ---" >&2
}

# Checks the OSP_* parameters; messages on stderr, status 1 when invalid.
check_parameters() {
  case ${OSP_LABEL-} in
    *[!A-Za-z0-9_-]*)
      echo "Invalid value '$OSP_LABEL' for the label parameter: only letters, digits, '-' and '_'" >&2
      return 1 ;;
  esac
  if [ "${#OSP_LABEL}" -gt 16 ]; then
    echo "Invalid value '$OSP_LABEL' for the label parameter: at most 16 characters" >&2
    return 1
  fi
  case ${OSP_ZERO:-no} in
    yes|no) ;;
    *) echo "Invalid value '$OSP_ZERO' for the zero parameter: 'yes' or 'no'" >&2
       return 1 ;;
  esac
}

label() {
  echo "${OSP_LABEL:-lab}"
}

# write_header DEVICE INSTANCE LABEL VARIANT: the first 512 bytes of the
# disk become a small text header (the rest of the sector zeroed).
write_header() {
  dd if=/dev/zero of="$1" bs=512 count=1 conv=notrunc 2>/dev/null ||
    die "cannot write to $1"
  printf '%s\ninstance=%s\nlabel=%s\nvariant=%s\n' "$LAB_MAGIC" "$2" "$3" "$4" |
    dd of="$1" conv=notrunc 2>/dev/null || die "cannot write to $1"
}

# read_header DEVICE: the header's text (empty when there is none).
read_header() {
  dd if="$1" bs=512 count=1 2>/dev/null | tr -d '\000'
}

if [ "${DEBUG_LEVEL:-0}" -ge 1 ]; then
  set -x
fi
