// Go echo server for weft's tcp_echo benchmark (bench/run), stdlib only. The
// same command line as weft's examples/echo_server (README, "Server
// workloads"):
//
//	weft-peer-go-echo --port P [--host 127.0.0.1] [--workers N]
//
// runtime.GOMAXPROCS(N); one goroutine per connection that reads up to 4 KiB
// and writes back what it read. An explicit Read/Write loop rather than
// io.Copy, which would splice(2) between the sockets on Linux and so not be
// the same work as the other servers do. TCP_NODELAY is Go's default.
// Prints "listening on HOST:PORT" once bound; runs until killed.
package main

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
)

func usage(msg string) {
	fmt.Fprintf(os.Stderr, "weft-peer-go-echo: %s\n", msg)
	fmt.Fprintln(os.Stderr, "usage: weft-peer-go-echo --port P [--host 127.0.0.1] [--workers N]")
	os.Exit(2)
}

func serve(c *net.TCPConn) {
	defer c.Close()
	_ = c.SetNoDelay(true)
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	host, port, workers := "127.0.0.1", -1, 2
	argv := os.Args[1:]
	for i := 0; i < len(argv); i += 2 {
		if i+1 >= len(argv) {
			usage("missing value for " + argv[i])
		}
		val := argv[i+1]
		switch argv[i] {
		case "--host":
			host = val
		case "--port":
			v, err := strconv.ParseUint(val, 10, 16)
			if err != nil {
				usage("bad port " + val)
			}
			port = int(v)
		case "--workers":
			v, err := strconv.ParseUint(val, 10, 31)
			if err != nil || v < 1 {
				usage("bad workers " + val)
			}
			workers = int(v)
		default:
			usage("unknown option " + argv[i])
		}
	}
	if port < 0 {
		usage("--port is required")
	}
	runtime.GOMAXPROCS(workers)
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		usage("listen: " + err.Error())
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	tl := ln.(*net.TCPListener)
	for {
		c, err := tl.AcceptTCP()
		if err != nil {
			fmt.Fprintf(os.Stderr, "weft-peer-go-echo: accept: %v\n", err)
			continue
		}
		go serve(c)
	}
}
