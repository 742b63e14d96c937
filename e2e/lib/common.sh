# shellcheck shell=bash
# Shared helpers for e2e/run.sh: output, timing, results and the processes we start.
#
# Results: every check prints one line, "PASS  name: what" or "FAIL  name: what", and
# appends it to $E2E_RESULTS. The outer stage counts that file, so the closing
# "N passed, M failed" line is right even if the inner stage dies half way.

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# secs_since START_MS -> "12.3s"
secs_since() { local d=$(( $(now_ms) - $1 )); printf '%d.%ds' $((d / 1000)) $(( (d % 1000) / 100 )); }

say()  { printf '%s\n' "$*"; }
head_line() { printf '\n== %s\n' "$*"; }

# A setup or scenario step with its duration: timed LABEL CMD... (returns CMD's status)
timed() {
  local label=$1 t rc; shift
  t=$(now_ms)
  "$@"; rc=$?
  printf 'time  %-48s %8s%s\n' "$label" "$(secs_since "$t")" "$([ $rc -eq 0 ] || echo "  (exit $rc)")"
  return $rc
}

# logged LOGFILE CMD...: run CMD with its output appended to LOGFILE.
logged() { local f=$1; shift; "$@" >>"$f" 2>&1; }

# ------------------------------------------------------------------ results
CURRENT_SCENARIO=${CURRENT_SCENARIO:-setup}

record() { printf '%s\n' "$*" >>"$E2E_RESULTS"; printf '%s\n' "$*"; }

# pass WHAT
pass() { record "PASS  $CURRENT_SCENARIO: $*"; }

# fail WHAT [LOGFILE...]: one FAIL line, then the tail of each log that explains it.
fail() {
  local what=$1 f; shift
  record "FAIL  $CURRENT_SCENARIO: $what"
  for f in "$@"; do show_tail "$f"; done
}

# info WHAT: a measurement or observation, not counted (also kept in the results file).
info() { record "INFO  $CURRENT_SCENARIO: $*"; }

# show_tail FILE [LINES]: the last lines of a log, indented, for a failure report.
show_tail() {
  local f=$1 n=${2:-${E2E_TAIL:-25}}
  if [ -s "$f" ]; then
    printf '      --- last %s lines of %s\n' "$n" "$f"
    tail -n "$n" "$f" | cut -c1-400 | sed 's/^/      | /'
  else
    printf '      --- %s is empty or missing\n' "$f"
  fi
}

# check WHAT CMD...: run CMD (output to the scenario log); PASS if it exits 0, else FAIL with its output.
check() {
  local what=$1 out rc; shift
  out=$("$@" 2>&1); rc=$?
  printf '%s\n' "--- check: $what" "\$ $*" "$out" "(exit $rc)" >>"$SCEN_LOG"
  if [ $rc -eq 0 ]; then pass "$what"; return 0; fi
  record "FAIL  $CURRENT_SCENARIO: $what (exit $rc)"
  printf '%s\n' "$out" | tail -n "${E2E_TAIL:-25}" | cut -c1-400 | sed 's/^/      | /'
  scen_logs_tail
  return 1
}

# Per scenario: SCEN_LOGS are the engine logs shown after a failed check (SCEN_LOG_HOOK,
# if set, refreshes them first, e.g. from a node's journal); SCEN_FILES are the files
# under test, printed once at the end of a scenario that had a failure.
SCEN_LOGS=() SCEN_FILES=() SCEN_LOG_HOOK=
scen_logs_tail() {
  local f
  [ -n "$SCEN_LOG_HOOK" ] && "$SCEN_LOG_HOOK" >/dev/null 2>&1
  for f in "${SCEN_LOGS[@]}"; do show_tail "$f" "${E2E_LOG_TAIL:-15}"; done
}
scen_show_files() {
  local p f
  for p in "${SCEN_FILES[@]}"; do
    [ -e "$p" ] || { printf '      --- %s: absent\n' "$p"; continue; }
    find "$p" -type f 2>/dev/null | sort | while read -r f; do
      printf '      --- %s (mode %s)\n' "$f" "$(stat -c %a "$f")"
      head -c 4000 "$f" | sed 's/^/      | /'
    done
  done
}

# ------------------------------------------------------------------ processes
# Every process we start in the background is recorded here and stopped by PID
# (never by name): by its scenario when the scenario ends, and by the EXIT trap.
PIDS=()
declare -A PID_NAME=()
LAST_PID=

# alive PID: true while the process exists and is not a zombie.
alive() { [ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

# spawn NAME LOGFILE CMD...: start CMD in the background, output appended to LOGFILE; sets LAST_PID.
spawn() {
  local name=$1 logf=$2; shift 2
  printf '\n=== %s: start %s: %s\n' "$(date +%T.%N | cut -c1-12)" "$name" "$*" >>"$logf"
  "$@" >>"$logf" 2>&1 </dev/null &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  PID_NAME[$LAST_PID]=$name
}

# stop_pid PID [SIGNAL] [TIMEOUT_S]: signal, wait (bounded), then SIGKILL.
stop_pid() {
  local pid=$1 sig=${2:-TERM} t=${3:-20} i
  [ -n "$pid" ] || return 0
  alive "$pid" || return 0
  kill -s "$sig" "$pid" 2>/dev/null || return 0
  for ((i = 0; i < t * 10; i++)); do alive "$pid" || return 0; sleep 0.1; done
  say "      (${PID_NAME[$pid]:-pid $pid} did not stop within ${t}s after SIG$sig: SIGKILL)"
  kill -s KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do alive "$pid" || return 0; sleep 0.1; done
}

# stop_since MARK: stop, newest first, every process spawned since ${#PIDS[@]} was MARK.
stop_since() {
  local mark=$1 i
  for ((i = ${#PIDS[@]} - 1; i >= mark; i--)); do stop_pid "${PIDS[$i]}"; done
}

# wait_until TIMEOUT_S CMD...: poll CMD every 0.1 s until it succeeds; false on timeout.
wait_until() {
  local t=$1 i; shift
  for ((i = 0; i < t * 10; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
