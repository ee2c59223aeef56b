# Sourced by the experiment scripts: `sweep DIR ARGS...` runs `softq-train -m ARGS...` into DIR
# unless DIR already holds a finished sweep of exactly these arguments (then it is reused).
# A sweep that did not finish (killed, or a job failed) is run again from scratch.

sweep() {
    local dir=$1
    shift
    local stamp="$dir/.finished"
    local args="$*"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$args" ]]; then
        echo "reusing $dir (finished with the same arguments; delete it to run again)"
        return 0
    fi
    rm -rf "$dir"
    softq-train -m "$@" hydra.sweep.dir="$dir"
    printf '%s' "$args" >"$stamp"
}
