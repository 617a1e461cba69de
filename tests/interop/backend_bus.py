"""A game backend on turntable's backend bus, as the MMOTD design has one: it opens a game
through `NAME:api`, listens to the game's tap (PSUBSCRIBE `NAME:tap:game:*`), checks every
action and kicks a player whose action is invalid, again through `NAME:api`.

The game: every action carries `{"move": N}` with N an integer from 1 to 9 (a turntable v1
`game` message carries a list of actions, each with its `data`; a World `channel.send`
carries the data itself). Anything else is cheating.

Every tap message is printed to stdout as one JSON line, then `{"kicked": USER}` after a
kick; `{"ready": true}` once the game was asked for and the tap is subscribed. The
backend checks what it can itself (one channel, `seq` counting up by one, `time` a
plausible ms timestamp) and exits 0 once the kicked player's `leave` came by, 1 with a
reason on stderr if anything was off, 2 on a timeout.

Usage: backend_bus.py --port REDIS_PORT --game ID [--cluster NAME] [--timeout SECONDS]
"""

import argparse
import json
import sys
import time

import redis


def moves(message):
    """The moves of one tapped publication: a turntable v1 game message's actions, or the
    data of one from another dialect."""
    data = message["data"]
    actions = data if isinstance(data, list) else [{"data": data}]
    return [action.get("data", {}).get("move") if isinstance(action, dict) and
            isinstance(action.get("data"), dict) else None for action in actions]


def valid(move):
    return isinstance(move, int) and not isinstance(move, bool) and 1 <= move <= 9


def fail(why):
    print(why, file=sys.stderr, flush=True)
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="the cluster's Redis port")
    parser.add_argument("--game", required=True, help="the game's id (its channel is game:ID)")
    parser.add_argument("--cluster", default="turntable", help="the cluster name (NAME)")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()

    bus = redis.Redis(host="127.0.0.1", port=args.port)
    listener = bus.pubsub()
    listener.psubscribe(f"{args.cluster}:tap:game:*")
    # The subscription is in place once Redis confirmed it.
    while (confirmed := listener.get_message(timeout=1.0)) is None or \
            confirmed["type"] != "psubscribe":
        pass
    channel = f"game:{args.game}"
    bus.publish(f"{args.cluster}:api", json.dumps({
        "method": "create_game",
        "params": {"id": args.game, "name": "Duel", "max_players": 4},
    }))
    print(json.dumps({"ready": True}), flush=True)

    last_seq = 0
    kicked = set()
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        raw = listener.get_message(timeout=0.5)
        if raw is None or raw["type"] != "pmessage":
            continue
        if raw["channel"].decode() != f"{args.cluster}:tap:{channel}":
            continue
        message = json.loads(raw["data"])
        print(json.dumps(message), flush=True)
        if message.get("channel") != channel:
            fail(f"a tap message of another channel: {message}")
        if "event" in message:
            if message["event"] == "leave" and message["user"] in kicked:
                return
            continue
        if message["seq"] != last_seq + 1:
            fail(f"seq {message['seq']} after {last_seq}: out of order or lost")
        last_seq = message["seq"]
        if abs(message["time"] - time.time() * 1000) > 60_000:
            fail(f"time {message['time']} is not now in ms since the epoch")
        player = message["from"]
        if player not in kicked and not all(valid(m) for m in moves(message)):
            kicked.add(player)
            bus.publish(f"{args.cluster}:api", json.dumps({
                "method": "kick",
                "params": {"channel": channel, "user": player, "message": "invalid move"},
            }))
            print(json.dumps({"kicked": player}), flush=True)
    print("timed out", file=sys.stderr, flush=True)
    sys.exit(2)


if __name__ == "__main__":
    main()
