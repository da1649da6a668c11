// Command goclient drives the crius streaming server with client-go's real executors and
// port forwarder (the code kubectl and crictl use), for the crate's integration tests.
//
//	goclient exec -url URL [-transport spdy|websocket] [-stdin] [-tty] [-width W -height H] [-ca PEM]
//	              [-spdy-protocol v3.channel.k8s.io]
//	goclient portforward -url URL [-transport spdy|websocket] -port P [-requests N] [-ca PEM]
//
// exec copies the process's stdin/stdout/stderr and exits with the remote exit code
// (100 on a client error). portforward forwards a free local port to port P, makes N HTTP
// GET requests through it, each on a new connection, and prints each response body.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/util/exec"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: goclient exec|portforward [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	rawURL := fs.String("url", "", "streaming URL")
	transport := fs.String("transport", "spdy", "spdy or websocket")
	stdin := fs.Bool("stdin", false, "send stdin")
	tty := fs.Bool("tty", false, "terminal mode")
	width := fs.Uint("width", 0, "terminal width to report")
	height := fs.Uint("height", 0, "terminal height to report")
	port := fs.Int("port", 0, "remote port")
	requests := fs.Int("requests", 1, "HTTP requests to make through the forwarded port")
	fs.StringVar(&caFile, "ca", "", "CA certificate (PEM) to trust for https URLs")
	fs.StringVar(&spdyProtocol, "spdy-protocol", "", "offer only this remotecommand protocol over SPDY")
	_ = fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "exec":
		os.Exit(runExec(*rawURL, *transport, *stdin, *tty, uint16(*width), uint16(*height)))
	case "portforward":
		os.Exit(runPortForward(*rawURL, *transport, *port, *requests))
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}

// caFile and spdyProtocol are the -ca and -spdy-protocol flags.
var caFile, spdyProtocol string

func config(u *url.URL) *rest.Config {
	return &rest.Config{
		Host:            u.Scheme + "://" + u.Host,
		TLSClientConfig: rest.TLSClientConfig{CAFile: caFile},
	}
}

// fixedSize reports one terminal size, then nothing more until the session ends.
type fixedSize struct {
	size *remotecommand.TerminalSize
	done chan struct{}
}

func (f *fixedSize) Next() *remotecommand.TerminalSize {
	if s := f.size; s != nil {
		f.size = nil
		return s
	}
	<-f.done
	return nil
}

func runExec(rawURL, transport string, stdin, tty bool, width, height uint16) int {
	u, err := url.Parse(rawURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "goclient:", err)
		return 100
	}
	var ex remotecommand.Executor
	switch transport {
	case "spdy":
		if spdyProtocol == "" {
			ex, err = remotecommand.NewSPDYExecutor(config(u), "POST", u)
			break
		}
		rt, upgrader, e := spdy.RoundTripperFor(config(u))
		if e != nil {
			err = e
			break
		}
		ex, err = remotecommand.NewSPDYExecutorForProtocols(rt, upgrader, "POST", u, spdyProtocol)
	case "websocket":
		ex, err = remotecommand.NewWebSocketExecutor(config(u), "GET", rawURL)
	default:
		err = fmt.Errorf("unknown transport %q", transport)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "goclient:", err)
		return 100
	}
	opts := remotecommand.StreamOptions{Stdout: os.Stdout, Tty: tty}
	if !tty {
		opts.Stderr = os.Stderr
	}
	if stdin {
		opts.Stdin = os.Stdin
	}
	done := make(chan struct{})
	defer close(done)
	if tty && width > 0 {
		opts.TerminalSizeQueue = &fixedSize{
			size: &remotecommand.TerminalSize{Width: width, Height: height},
			done: done,
		}
	}
	err = ex.StreamWithContext(context.Background(), opts)
	if err == nil {
		return 0
	}
	var exitErr exec.CodeExitError
	if errors.As(err, &exitErr) {
		return exitErr.Code
	}
	fmt.Fprintln(os.Stderr, "goclient:", err)
	return 100
}

func runPortForward(rawURL, transport string, port, requests int) int {
	u, err := url.Parse(rawURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "goclient:", err)
		return 100
	}
	var dialer httpstream.Dialer
	switch transport {
	case "spdy":
		rt, upgrader, e := spdy.RoundTripperFor(config(u))
		err = e
		dialer = spdy.NewDialer(upgrader, &http.Client{Transport: rt}, "POST", u)
	case "websocket":
		dialer, err = portforward.NewSPDYOverWebsocketDialer(u, config(u))
	default:
		err = fmt.Errorf("unknown transport %q", transport)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "goclient:", err)
		return 100
	}
	stop := make(chan struct{})
	ready := make(chan struct{})
	pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"},
		[]string{fmt.Sprintf("0:%d", port)}, stop, ready, io.Discard, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "goclient:", err)
		return 100
	}
	errc := make(chan error, 1)
	go func() { errc <- pf.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-errc:
		fmt.Fprintln(os.Stderr, "goclient: forward:", err)
		return 100
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) != 1 {
		fmt.Fprintln(os.Stderr, "goclient: ports:", ports, err)
		return 100
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	code := 0
	for i := 0; i < requests; i++ {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", ports[0].Local))
		if err != nil {
			fmt.Fprintln(os.Stderr, "goclient: GET:", err)
			code = 100
			break
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, "goclient: read body:", err)
			code = 100
			break
		}
		fmt.Printf("%s\n", body)
	}
	close(stop)
	<-errc
	return code
}
