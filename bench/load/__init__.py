"""Load scenarios (issue 10): wrk with Lua scripts against chainconsult and the peer stack,
a bare route, held keep-alive connections and a soak. `python -m bench.load` (`make bench`,
`make soak`)."""
