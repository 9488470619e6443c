#!/bin/sh
# An example watchbot worker: one run per message, the message in the environment, the exit code decides.
#
#   0  done: the message is deleted
#   3  rejected: deleted, and a notification says so
#   4  not now: returned to the queue after a backoff delay, quietly
#   *  failure: returned after a backoff delay, with a notification
#
# It exercises everything a worker can do: a map-reduce job (reduce-mode progress and follow-up messages sent to
# $WorkTopic), a rejection, a retry, and a failure. The message kind is in $Subject:
#   map     "JOB PARTS"  split JOB into PARTS parts: set the total, send one `part` message per part
#   part    "JOB N"      do part N of JOB; the call that completes the last part sends the `reduce` message
#   reduce  "JOB"        combine the parts (at least once: safe to repeat)
#   reject  any          exit 3: this message can never be processed
#   retry   any          exit 4 on the first receive (e.g. a resource not ready yet), then succeed
#   flaky   any          exit 1 on the first receive (a crash), then succeed
#
# Run it locally:   watchbot local --workers 4 --messages examples/messages.jsonl --until-empty -- examples/worker.sh
# The same script runs unchanged on AWS: there $WorkTopic is the stack's SNS topic and $ProgressTable its table.
set -eu

say() { echo "[worker] [$MessageId] $*"; }

case "${Subject:-}" in
map)
    set -- $Message
    job=$1 parts=$2
    watchbot progress set-total "$job" --total "$parts" >/dev/null
    n=1
    while [ "$n" -le "$parts" ]; do
        watchbot send --topic "$WorkTopic" --subject part --message "$job $n" >/dev/null
        n=$((n + 1))
    done
    say "map $job: sent $parts parts"
    ;;
part)
    set -- $Message
    job=$1 part=$2
    say "part $part of $job: working"
    # ... the real work of one part goes here ...
    done=$(watchbot progress complete-part "$job" --part "$part" --json)
    # Who sends the reduce message:
    # - "finished":true: this call completed the last part (exactly one call gets that), so it sends it;
    # - a replay of a part message after the job was done ("complete":true, not "finished") sends it only if
    #   reduce-sent was never recorded: the run that finished the job may have crashed before sending it.
    # This sends the reduce at least once, not exactly once: a replay that runs while the finishing run is between
    # its send and its reduce-sent sends a second one. So the reduce step must be safe to run twice (here it only
    # logs). Recording first and sending after would be at most once: a crash in between would lose the reduce.
    send_reduce=no
    case "$done" in
    *'"finished":true'*) send_reduce=yes ;;
    *'"complete":true'*)
        case "$(watchbot progress status "$job" --json)" in
        *'"reduceSent":true'*) ;;
        *) send_reduce=yes ;;
        esac
        ;;
    esac
    if [ "$send_reduce" = yes ]; then
        watchbot send --topic "$WorkTopic" --subject reduce --message "$job" >/dev/null
        watchbot progress reduce-sent "$job" >/dev/null
        say "part $part of $job: last part done, reduce sent"
    fi
    ;;
reduce)
    say "reduce $Message: all parts done"
    ;;
reject)
    say "rejecting: $Message"
    exit 3
    ;;
retry)
    if [ "$ApproximateReceiveCount" -eq 1 ]; then
        say "not ready yet, try again later"
        exit 4
    fi
    say "retry succeeded on receive $ApproximateReceiveCount"
    ;;
flaky)
    if [ "$ApproximateReceiveCount" -eq 1 ]; then
        say "crashing on the first try"
        exit 1
    fi
    say "flaky succeeded on receive $ApproximateReceiveCount"
    ;;
*)
    say "unknown subject '${Subject:-}': $Message"
    exit 3
    ;;
esac
