//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"
)

// The HTTP test's own servers and clients, run as helper processes of the
// test binary inside its pods (helperEnv selects the mode): a Go net/http
// server speaking HTTP/1.1 and h2c on one port, its client over either, and
// a gRPC server and client (a hand-written service over a raw-bytes codec,
// so no generated code is needed).

// plantedSetCookie is a Set-Cookie value the Go server sends: it must not
// appear anywhere in the collector's output.
const plantedSetCookie = "planted-setcookie-3e9b"

// httpHelper runs mode if it is one of these helpers.
func httpHelper(mode string, args []string) (bool, error) {
	switch mode {
	case "httpserver":
		return true, httpServer(args[0])
	case "httpclient":
		n, _ := strconv.Atoi(args[2])
		return true, httpClient(args[0], args[1], n)
	case "grpcserver":
		return true, grpcServer(args[0])
	case "grpcclient":
		return true, grpcClient(args[0])
	}
	return false, nil
}

// httpServer: /hello (200, sets a cookie), /status/<code>, /echo (reads the
// body, answers its length in a chunked response), over HTTP/1.1 and h2c.
func httpServer(addr string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "s="+plantedSetCookie)
		io.WriteString(w, "hello")
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.PathValue("code"))
		if err != nil {
			code = http.StatusBadRequest
		}
		w.WriteHeader(code)
		io.WriteString(w, http.StatusText(code))
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body) // answers Expect: 100-continue
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, "received ")
		w.(http.Flusher).Flush() // length unknown: a chunked response
		fmt.Fprintf(w, "%d bytes", n)
	})
	srv := &http.Server{Addr: addr, Handler: h2c.NewHandler(mux, &http2.Server{})}
	return srv.ListenAndServe()
}

// httpClient makes n rounds of GET /hello, /status/404, /status/503 and
// prints one line per request: "<path> <status> <local port>". h1 sends
// them one after another on a kept-alive connection, h2c all at once as
// streams of one connection (prior knowledge).
func httpClient(base, proto string, n int) error {
	var port sync.Map
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			port.Store(c, c.LocalAddr().(*net.TCPAddr).Port)
		}
		return c, err
	}
	var local int
	cl := &http.Client{Timeout: 10 * time.Second}
	switch proto {
	case "h1":
		cl.Transport = &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}
	case "h2c":
		cl.Transport = &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return dial(ctx, network, addr)
		}}
	default:
		return fmt.Errorf("protocol %q", proto)
	}
	get := func(path string) (string, error) {
		resp, err := cl.Get(base + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return "", err
		}
		port.Range(func(_, v any) bool { local = v.(int); return false })
		return fmt.Sprintf("%s %d %d", path, resp.StatusCode, local), nil
	}
	paths := []string{}
	for range n {
		paths = append(paths, "/hello", "/status/404", "/status/503")
	}
	lines := make([]string, len(paths))
	errs := make([]error, len(paths))
	if proto == "h1" {
		for i, p := range paths {
			lines[i], errs[i] = get(p)
		}
	} else {
		if _, err := get("/hello"); err != nil { // the connection first, then every stream on it
			return err
		}
		var wg sync.WaitGroup
		for i, p := range paths {
			wg.Go(func() { lines[i], errs[i] = get(p) })
		}
		wg.Wait()
		lines = append([]string{fmt.Sprintf("/hello 200 %d", local)}, lines...)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Println(strings.Join(lines, "\n"))
	return nil
}

// rawCodec passes gRPC messages as they are ([]byte).
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "raw" }

// echoService is ebpfflow.test.Echo: Say (unary: echoes), Count (server
// streaming: three messages), Fail (unary: INTERNAL).
var echoService = grpc.ServiceDesc{
	ServiceName: "ebpfflow.test.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Say", Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			out := append([]byte("echo:"), in...)
			return &out, nil
		}},
		{MethodName: "Fail", Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			return nil, status.Error(codes.Internal, "boom")
		}},
	},
	Streams: []grpc.StreamDesc{{StreamName: "Count", ServerStreams: true, Handler: func(_ any, stream grpc.ServerStream) error {
		var in []byte
		if err := stream.RecvMsg(&in); err != nil {
			return err
		}
		for i := range 3 {
			m := []byte(strconv.Itoa(i))
			if err := stream.SendMsg(&m); err != nil {
				return err
			}
		}
		return nil
	}}},
}

func grpcServer(addr string) error {
	encoding.RegisterCodec(rawCodec{})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s := grpc.NewServer()
	s.RegisterService(&echoService, struct{}{})
	return s.Serve(l)
}

// grpcClient calls Say, Count and Fail on one connection and prints
// "<method> <code> <messages>" for each.
func grpcClient(target string) error {
	encoding.RegisterCodec(rawCodec{})
	conn, err := grpc.NewClient("passthrough:///"+target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.CallContentSubtype("raw")))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, out := []byte("hi"), []byte(nil)
	err = conn.Invoke(ctx, "/ebpfflow.test.Echo/Say", &in, &out)
	fmt.Printf("Say %d %d\n", status.Code(err), len(out))
	if err != nil {
		return err
	}
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/ebpfflow.test.Echo/Count")
	if err != nil {
		return err
	}
	if err := st.SendMsg(&in); err != nil {
		return err
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	msgs := 0
	for {
		var m []byte
		if err = st.RecvMsg(&m); err != nil {
			break
		}
		msgs++
	}
	if !errors.Is(err, io.EOF) {
		return err
	}
	fmt.Printf("Count %d %d\n", codes.OK, msgs)
	err = conn.Invoke(ctx, "/ebpfflow.test.Echo/Fail", &in, &out)
	fmt.Printf("Fail %d 0\n", status.Code(err))
	if status.Code(err) != codes.Internal {
		return fmt.Errorf("Fail: %v", err)
	}
	return nil
}
