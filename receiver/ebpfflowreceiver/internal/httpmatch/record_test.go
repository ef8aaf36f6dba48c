package httpmatch

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/privileged"
)

// The captures in testdata/ are real traffic on loopback: nginx and curl,
// Go's net/http server and client over HTTP/1.1 and h2c, and gRPC. They
// are made again with
//
//	go test -run TestRecordCaptures -record   (as root: it captures on lo)
//
// which needs nginx, curl and dumpcap (tshark's package). Secrets are
// planted in requests (an Authorization header, a cookie, a query string):
// no exchange may carry them.
var record = flag.Bool("record", false, "record testdata/*.pcap from real servers and clients")

const (
	plantedAuth   = "planted-authz-7f3a"
	plantedCookie = "planted-cookie-91c2"
	plantedQuery  = "planted-query-5be8"
	plantedSetCk  = "planted-setcookie-44d1"
	traceparentA  = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
)

func TestRecordCaptures(t *testing.T) {
	if !*record {
		t.Skip("records the captures in testdata/ with -record")
	}
	privileged.Require(t)
	for _, tool := range []string{"nginx", "curl", "dumpcap"} {
		_, err := exec.LookPath(tool)
		require.NoError(t, err, "needs %s", tool)
	}
	t.Run("nginx", recordNginx)
	t.Run("gohttp", recordGoHTTP)
	t.Run("grpc", recordGRPC)
}

// capture runs dumpcap on lo for the given ports until stop is called.
func capture(t *testing.T, file string, snaplen int, ports ...int) (stop func()) {
	t.Helper()
	var filter []string
	for _, p := range ports {
		filter = append(filter, "tcp port "+strconv.Itoa(p))
	}
	out := filepath.Join("testdata", file)
	cmd := exec.Command("dumpcap", "-q", "-i", "lo", "-P", "-s", strconv.Itoa(snaplen),
		"-f", strings.Join(filter, " or "), "-w", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	// dumpcap says nothing with -q: wait for the file to appear.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, err := os.Stat(out); err == nil && st.Size() > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "dumpcap did not start: %s", stderr.String())
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	return func() {
		time.Sleep(500 * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		require.NoError(t, os.Chmod(out, 0o644))
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// curl runs curl with args; each URL's body is dropped and its transfer
// summary (-w %{json}) returned, one line per URL.
func curl(t *testing.T, args ...string) string {
	t.Helper()
	all := []string{"-sS", "-w", "%{json}\\n"}
	for _, a := range args {
		if strings.HasPrefix(a, "http://") {
			all = append(all, "-o", "/dev/null")
		}
		all = append(all, a)
	}
	out, err := exec.Command("curl", all...).Output()
	require.NoError(t, err, "curl %v", args)
	return string(out)
}

func recordNginx(t *testing.T) {
	dir := t.TempDir()
	port, dead := freePort(t), freePort(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>hello</h1>\n"), 0o644))
	big := bytes.Repeat([]byte("0123456789abcdef"), 10<<20/16)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "big"), big, 0o644))
	upload := bytes.Repeat([]byte("u"), 100<<10)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "upload"), upload, 0o644))
	conf := fmt.Sprintf(`daemon off; master_process off; worker_processes 1; pid %[1]s/nginx.pid;
error_log %[1]s/error.log; events { worker_connections 64; }
http {
  access_log off; client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/f; uwsgi_temp_path %[1]s/u; scgi_temp_path %[1]s/s;
  sendfile on; keepalive_requests 1000; client_max_body_size 10m;
  server {
    listen 127.0.0.1:%[2]d; root %[1]s;
    location = /err { return 500; }
    location = /dead { proxy_pass http://127.0.0.1:%[3]d; }
    location = /upload { add_header Set-Cookie "id=%[4]s"; return 201 "stored\n"; }
  }
}`, dir, port, dead, plantedSetCk)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644))
	ng := exec.Command("nginx", "-c", filepath.Join(dir, "nginx.conf"), "-p", dir)
	require.NoError(t, ng.Start())
	defer func() { _ = ng.Process.Kill(); _ = ng.Wait() }()
	waitListen(t, port)

	stop := capture(t, "nginx.pcap", 1024, port)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	var oracle strings.Builder
	// Keep-alive: five requests on one connection, secrets planted.
	oracle.WriteString(curl(t, "-H", "Authorization: Bearer "+plantedAuth, "-H", "Cookie: c="+plantedCookie,
		"-H", "traceparent: "+traceparentA, "-A", "curl-keepalive",
		base+"/index.html?token="+plantedQuery, base+"/missing", base+"/err", base+"/dead", base+"/big"))
	oracle.WriteString(curl(t, "-I", base+"/big"))
	oracle.WriteString(curl(t, "-H", "Transfer-Encoding: chunked", "--data-binary", "@"+filepath.Join(dir, "upload"), base+"/upload"))
	oracle.WriteString(curl(t, "-H", "Expect: 100-continue", "--expect100-timeout", "5", "--data-binary", "@"+filepath.Join(dir, "upload"), base+"/upload"))
	oracle.WriteString(curl(t, "-0", base+"/index.html"))
	stop()
	require.NoError(t, os.WriteFile("testdata/nginx.curl.jsonl", []byte(oracle.String()), 0o644))
}

func waitListen(t *testing.T, port int) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp4", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			_ = c.Close()
			return
		}
		require.True(t, time.Now().Before(deadline), "nothing listens on %d", port)
		time.Sleep(20 * time.Millisecond)
	}
}

// goMux serves the Go captures: small answers, a streamed (chunked)
// response with trailers, an echo of the body's size, a status.
func goMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "id", Value: plantedSetCk})
		_, _ = io.WriteString(w, "hello\n")
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		for i := range 5 {
			fmt.Fprintf(w, "part %d %s\n", i, strings.Repeat("s", 3000))
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Checksum", "abc")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d\n", n)
	})
	mux.HandleFunc("/status/", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
		w.WriteHeader(code)
	})
	return mux
}

func serve(t *testing.T, h http.Handler) (port int, stop func()) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	return l.Addr().(*net.TCPAddr).Port, func() { _ = srv.Close() }
}

func recordGoHTTP(t *testing.T) {
	p1, stop1 := serve(t, goMux())
	defer stop1()
	p2, stop2 := serve(t, h2c.NewHandler(goMux(), &http2.Server{}))
	defer stop2()
	stop := capture(t, "gohttp.pcap", 65535, p1, p2)

	// HTTP/1.1, keep-alive, chunked request bodies (unknown length).
	c1 := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	base := fmt.Sprintf("http://127.0.0.1:%d", p1)
	get := func(c *http.Client, url string) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		require.NoError(t, err)
		req.Header.Set("Cookie", "c="+plantedCookie)
		resp, err := c.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	for i := range 10 {
		get(c1, fmt.Sprintf("%s/hello?i=%d&token=%s", base, i, plantedQuery))
	}
	get(c1, base+"/stream")
	get(c1, base+"/status/418")
	resp, err := c1.Post(base+"/echo", "application/octet-stream", io.MultiReader(strings.NewReader(strings.Repeat("a", 5000)), strings.NewReader("tail")))
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	// HTTP/1.0: the streamed answer is delimited by the connection's close.
	curl(t, "-0", base+"/stream")

	// h2c with prior knowledge, streams in parallel on one connection.
	c2 := &http.Client{Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}}
	base2 := fmt.Sprintf("http://127.0.0.1:%d", p2)
	get(c2, base2+"/hello?warm=1")
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			switch i % 3 {
			case 0:
				get(c2, fmt.Sprintf("%s/hello?token=%s", base2, plantedQuery))
			case 1:
				get(c2, base2+"/stream")
			default:
				resp, err := c2.Post(base2+"/echo", "text/plain", strings.NewReader(strings.Repeat("b", 20000)))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
	// curl: h2c upgrade (two requests on the upgraded connection) and
	// prior knowledge.
	curl(t, "--http2", "-H", "Authorization: Bearer "+plantedAuth, base2+"/hello", base2+"/status/503")
	curl(t, "--http2-prior-knowledge", "-H", "traceparent: "+traceparentA, base2+"/echo", "--data-binary", "posted")
	stop()
}

// echoService is a gRPC service without generated code: its messages are
// protobuf StringValues.
var echoService = grpc.ServiceDesc{
	ServiceName: "test.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Unary",
		Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			if in.Value == "fail" {
				return nil, status.Error(codes.PermissionDenied, "not for you")
			}
			return wrapperspb.String("echo " + in.Value), nil
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Stream",
		ServerStreams: true,
		Handler: func(_ any, s grpc.ServerStream) error {
			in := new(wrapperspb.StringValue)
			if err := s.RecvMsg(in); err != nil {
				return err
			}
			for i := range 3 {
				if err := s.SendMsg(wrapperspb.String(fmt.Sprintf("%s %d", in.Value, i))); err != nil {
					return err
				}
			}
			return nil
		},
	}},
}

func recordGRPC(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	srv.RegisterService(&echoService, struct{}{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()
	port := l.Addr().(*net.TCPAddr).Port
	stop := capture(t, "grpc.pcap", 65535, port)

	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 5 {
		out := new(wrapperspb.StringValue)
		require.NoError(t, conn.Invoke(ctx, "/test.Echo/Unary", wrapperspb.String(fmt.Sprintf("call %d", i)), out))
	}
	err = conn.Invoke(ctx, "/test.Echo/Unary", wrapperspb.String("fail"), new(wrapperspb.StringValue))
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/test.Echo/Stream")
	require.NoError(t, err)
	require.NoError(t, st.SendMsg(wrapperspb.String("tick")))
	require.NoError(t, st.CloseSend())
	for {
		if err := st.RecvMsg(new(wrapperspb.StringValue)); err != nil {
			require.True(t, errors.Is(err, io.EOF), "%v", err)
			break
		}
	}
	h := healthpb.NewHealthClient(conn)
	_, err = h.Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	_, err = h.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"})
	require.Equal(t, codes.NotFound, status.Code(err))
	require.NoError(t, conn.Close())
	stop()
}
