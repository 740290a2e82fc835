# DeepSeekRL's system prerequisites: the one list, sourced by infra/setup.sh and the ./deepseekrl launcher.
# Each capability has its Debian packages and a cheap presence check (no dpkg, no apt: the launcher runs it on
# every command). Not a package manager: it installs with apt-get as root and otherwise prints the command.
#
#   capability  packages                    needed by
#   postgresql  postgresql                  the embedded cluster: db, export, campaign, silo, demo, most benchmarks
#   openblas    libopenblas0-pthread        SGEMM of the model engine: model, serve, campaign run, silo, demo
#   sandbox     bubblewrap python3-minimal  the code_exec reward's sandbox and interpreter
#   chromium    chromium                    bench dashboard and the dashboard's browser tests (headless)
#   npm         nodejs npm                  set-up only: the reference tokenizers and the dashboard's packages
#
# DEEPSEEKRL_OPENBLAS names the OpenBLAS library to load instead of libopenblas.so.0 (a soname or a path); the
# check and the model engine both honour it (the tests use it to simulate a machine without OpenBLAS);
# DEEPSEEKRL_CHROMIUM likewise names another chromium executable.

prereq_all=(postgresql openblas sandbox chromium)

# openblas_coretype [CPUINFO]: exports OPENBLAS_CORETYPE=SkylakeX when it is unset and the CPU has the AVX-512 subset those
# kernels use (F, CD, BW, DQ, VL). OpenBLAS 0.3.21 can take a Zen 4/5 for an older core and pick slow kernels, so an
# AVX-512 machine gets them by name; on any other CPU (a Zen 3 reads "Zen" here) its own detection stays, since
# SkylakeX kernels on a CPU without AVX-512 die of SIGILL. The engine (Blas.cs) makes the same choice.
openblas_coretype() {
  [[ -n "${OPENBLAS_CORETYPE:-}" ]] && return 0
  local flags f
  flags=" $(grep -m1 '^flags' "${1:-/proc/cpuinfo}" 2>/dev/null) "
  for f in avx512f avx512cd avx512bw avx512dq avx512vl; do
    [[ "$flags" == *" $f "* ]] || return 0
  done
  export OPENBLAS_CORETYPE=SkylakeX
}

# prereq_packages CAPABILITY: its Debian packages, space-separated.
prereq_packages() {
  case "$1" in
    postgresql) echo postgresql ;;
    openblas) echo libopenblas0-pthread ;;
    sandbox) echo bubblewrap python3-minimal ;;
    chromium) echo chromium ;;
    npm) echo nodejs npm ;;
    *) echo "prerequisites: unknown capability $1" >&2; return 1 ;;
  esac
}

# prereq_describe CAPABILITY: what is missing, for a person.
prereq_describe() {
  case "$1" in
    postgresql) echo "PostgreSQL (initdb and pg_ctl under /usr/lib/postgresql/N/bin)" ;;
    openblas) echo "OpenBLAS (${DEEPSEEKRL_OPENBLAS:-libopenblas.so.0})" ;;
    sandbox) echo "bubblewrap and python3" ;;
    chromium) echo "chromium (${DEEPSEEKRL_CHROMIUM:-/usr/bin/chromium})" ;;
    npm) echo "npm" ;;
  esac
}

# prereq_present CAPABILITY: succeeds when it is installed. Cheap: file tests, ldconfig -p only as a fallback.
prereq_present() {
  case "$1" in
    postgresql)
      # As src/Grains/DeepSeekRL.Storage/Database/PostgresInstallation.cs finds it: DEEPSEEKRL_PG_BIN, then Debian's.
      [[ -n "${DEEPSEEKRL_PG_BIN:-}" && -x "$DEEPSEEKRL_PG_BIN/pg_ctl" ]] && return 0
      local bin
      for bin in /usr/lib/postgresql/*/bin; do
        [[ -x "$bin/pg_ctl" && -x "$bin/initdb" ]] && return 0
      done
      return 1 ;;
    openblas)
      local lib="${DEEPSEEKRL_OPENBLAS:-libopenblas.so.0}" ldconfig cache
      if [[ "$lib" == */* ]]; then
        [[ -f "$lib" ]]
        return
      fi
      # The usual places first (no process started), then the loader's cache.
      local path
      for path in /usr/lib/*-linux-gnu/"$lib" /lib/*-linux-gnu/"$lib" /usr/lib/"$lib" /usr/local/lib/"$lib"; do
        [[ -f "$path" ]] && return 0
      done
      ldconfig="$(command -v ldconfig || echo /sbin/ldconfig)"
      cache="$("$ldconfig" -p 2>/dev/null)" || return 1
      [[ "$cache" == *$'\t'"$lib ("* ]] ;;
    sandbox) command -v bwrap >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1 ;;
    chromium) [[ -x "${DEEPSEEKRL_CHROMIUM:-/usr/bin/chromium}" ]] ;;
    npm) command -v npm >/dev/null 2>&1 ;;
    *) return 1 ;;
  esac
}

# prereq_install PACKAGE...: installs Debian packages with apt-get (root only).
prereq_install() {
  local p
  for p in "$@"; do
    # DeepSeekRL runs its own private cluster: do not let the package create and start a system-wide one.
    if [[ "$p" == postgresql && ! -e /etc/postgresql-common/createcluster.conf ]]; then
      mkdir -p /etc/postgresql-common/createcluster.d
      echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/deepseekrl.conf
    fi
  done
  DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# prereq_ensure WHO CAPABILITY...: succeeds when every capability is present. Otherwise, as root, installs the
# missing packages (saying so on standard error) and checks again; not root, prints one line
# "WHO: error: missing X; run: sudo apt-get install -y --no-install-recommends PKG..." and fails.
prereq_ensure() {
  local who="$1" cap
  shift
  local missing=() packages=()
  for cap in "$@"; do
    if ! prereq_present "$cap"; then
      missing+=("$(prereq_describe "$cap")")
      # shellcheck disable=SC2207 # package names have no spaces
      packages+=($(prereq_packages "$cap"))
    fi
  done
  ((${#packages[@]})) || return 0
  local what
  what="$(IFS=,; echo "${missing[*]}")"
  what="${what//,/, }"
  if [[ $(id -u) -ne 0 ]]; then
    echo "$who: error: missing $what; run: sudo apt-get install -y --no-install-recommends ${packages[*]}" >&2
    return 1
  fi
  echo "$who: installing ${packages[*]} (missing $what)" >&2
  if ! prereq_install "${packages[@]}"; then
    echo "$who: error: apt-get install -y --no-install-recommends ${packages[*]} failed (missing $what)" >&2
    return 1
  fi
  for cap in "$@"; do
    if ! prereq_present "$cap"; then
      echo "$who: error: still missing $(prereq_describe "$cap") after apt-get install ${packages[*]}" >&2
      return 1
    fi
  done
}

# prereq_for_command ARG...: the capabilities a ./deepseekrl command line needs, space-separated. --help and
# --version need nothing; with --db or DEEPSEEKRL_DB the embedded cluster (so PostgreSQL's binaries) is not used.
prereq_for_command() {
  local words=() a previous="" db="${DEEPSEEKRL_DB:-}"
  for a in "$@"; do
    case "$a" in
      --help | -h | -\? | --version) return 0 ;;
      --db | --db=*) db=set ;;
      -*) ;;
      *) [[ "$previous" == --db ]] || words+=("$a") ;;
    esac
    previous="$a"
  done
  local pg=postgresql
  [[ -z "$db" ]] || pg=""
  case "${words[0]:-}" in
    demo | silo) echo "openblas $pg" ;;
    campaign) if [[ "${words[1]:-}" == run ]]; then echo "openblas $pg"; else echo "$pg"; fi ;;
    db | export) echo "$pg" ;;
    model | serve) echo openblas ;;
    bench)
      case "${words[1]:-}" in
        model) echo openblas ;;
        campaign) echo "openblas $pg" ;;
        dashboard) echo "$pg chromium" ;;
        queue | ingest | api | queue-worker) echo "$pg" ;;
      esac ;;
  esac
}
