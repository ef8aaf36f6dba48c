// Command record makes the captures in ../ again: real HTTP traffic on
// loopback between nginx and curl, Go's net/http server and client over
// HTTP/1.1 and h2c, and a gRPC server and client, captured with dumpcap.
// Secrets are planted in the requests (an Authorization header, a cookie,
// a query string) and in responses (Set-Cookie): the tests check that no
// exchange carries them. Run from the httpmatch directory, as root (it
// captures on lo), with nginx, curl and dumpcap installed (make deps):
//
//	go run ./testdata/record
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The planted secrets; oracle_test.go spells them again.
const (
	plantedAuth   = "planted-authz-7f3a"
	plantedCookie = "planted-cookie-91c2"
	plantedQuery  = "planted-query-5be8"
	plantedSetCk  = "planted-setcookie-44d1"
	traceparentA  = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
)

func main() {
	if os.Geteuid() != 0 {
		log.Fatal("record: must run as root (it captures on lo)")
	}
	for _, tool := range []string{"nginx", "curl", "dumpcap"} {
		if _, err := exec.LookPath(tool); err != nil {
			log.Fatalf("record: needs %s (make deps)", tool)
		}
	}
	recordNginx()
	recordGoHTTP()
	recordGRPC()
}

// check stops the recording on an error.
func check(err error, what ...any) {
	if err != nil {
		log.Fatalf("record: %s: %v", fmt.Sprint(what...), err)
	}
}

// capture runs dumpcap on lo for the given ports until stop is called.
func capture(file string, snaplen int, ports ...int) (stop func()) {
	var filter []string
	for _, p := range ports {
		filter = append(filter, "tcp port "+strconv.Itoa(p))
	}
	out := filepath.Join("testdata", file)
	cmd := exec.Command("dumpcap", "-q", "-i", "lo", "-P", "-s", strconv.Itoa(snaplen),
		"-f", strings.Join(filter, " or "), "-w", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	check(cmd.Start(), "dumpcap")
	// dumpcap says nothing with -q: wait for the file to appear.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, err := os.Stat(out); err == nil && st.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			log.Fatalf("record: dumpcap did not start: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	return func() {
		time.Sleep(500 * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
		check(os.Chmod(out, 0o644), out)
	}
}

func freePort() int {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	check(err, "listen")
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// curl runs curl with args; each URL's body is dropped and its transfer
// summary (-w %{json}) returned, one line per URL.
func curl(args ...string) string {
	all := []string{"-sS", "-w", "%{json}\\n"}
	for _, a := range args {
		if strings.HasPrefix(a, "http://") {
			all = append(all, "-o", "/dev/null")
		}
		all = append(all, a)
	}
	out, err := exec.Command("curl", all...).Output()
	check(err, "curl ", args)
	return string(out)
}

func recordNginx() {
	dir, err := os.MkdirTemp("", "nginx")
	check(err, "temp dir")
	defer os.RemoveAll(dir)
	port, dead := freePort(), freePort()
	check(os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>hello</h1>\n"), 0o644), "write")
	big := bytes.Repeat([]byte("0123456789abcdef"), 10<<20/16)
	check(os.WriteFile(filepath.Join(dir, "big"), big, 0o644), "write")
	upload := bytes.Repeat([]byte("u"), 100<<10)
	check(os.WriteFile(filepath.Join(dir, "upload"), upload, 0o644), "write")
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
	check(os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644), "write")
	ng := exec.Command("nginx", "-c", filepath.Join(dir, "nginx.conf"), "-p", dir)
	check(ng.Start(), "nginx")
	defer func() { _ = ng.Process.Kill(); _ = ng.Wait() }()
	waitListen(port)

	stop := capture("nginx.pcap", 1024, port)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	var oracle strings.Builder
	// Keep-alive: five requests on one connection, secrets planted.
	oracle.WriteString(curl("-H", "Authorization: Bearer "+plantedAuth, "-H", "Cookie: c="+plantedCookie,
		"-H", "traceparent: "+traceparentA, "-A", "curl-keepalive",
		base+"/index.html?token="+plantedQuery, base+"/missing", base+"/err", base+"/dead", base+"/big"))
	oracle.WriteString(curl("-I", base+"/big"))
	oracle.WriteString(curl("-H", "Transfer-Encoding: chunked", "--data-binary", "@"+filepath.Join(dir, "upload"), base+"/upload"))
	oracle.WriteString(curl("-H", "Expect: 100-continue", "--expect100-timeout", "5", "--data-binary", "@"+filepath.Join(dir, "upload"), base+"/upload"))
	oracle.WriteString(curl("-0", base+"/index.html"))
	stop()
	check(os.WriteFile("testdata/nginx.curl.jsonl", []byte(oracle.String()), 0o644), "write")
}

func waitListen(port int) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp4", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			log.Fatalf("record: nothing listens on %d", port)
		}
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

func serve(h http.Handler) (port int, stop func()) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	check(err, "listen")
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	return l.Addr().(*net.TCPAddr).Port, func() { _ = srv.Close() }
}

func recordGoHTTP() {
	p1, stop1 := serve(goMux())
	defer stop1()
	p2, stop2 := serve(h2c.NewHandler(goMux(), &http2.Server{}))
	defer stop2()
	stop := capture("gohttp.pcap", 65535, p1, p2)

	// HTTP/1.1, keep-alive, chunked request bodies (unknown length).
	c1 := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	base := fmt.Sprintf("http://127.0.0.1:%d", p1)
	get := func(c *http.Client, url string) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		check(err, "request")
		req.Header.Set("Cookie", "c="+plantedCookie)
		resp, err := c.Do(req)
		check(err, url)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	for i := range 10 {
		get(c1, fmt.Sprintf("%s/hello?i=%d&token=%s", base, i, plantedQuery))
	}
	get(c1, base+"/stream")
	get(c1, base+"/status/418")
	resp, err := c1.Post(base+"/echo", "application/octet-stream", io.MultiReader(strings.NewReader(strings.Repeat("a", 5000)), strings.NewReader("tail")))
	check(err, "post")
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	// HTTP/1.0: the streamed answer is delimited by the connection's close.
	curl("-0", base+"/stream")

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
	curl("--http2", "-H", "Authorization: Bearer "+plantedAuth, base2+"/hello", base2+"/status/503")
	curl("--http2-prior-knowledge", "-H", "traceparent: "+traceparentA, base2+"/echo", "--data-binary", "posted")
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

func recordGRPC() {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	check(err, "listen")
	srv := grpc.NewServer()
	srv.RegisterService(&echoService, struct{}{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()
	port := l.Addr().(*net.TCPAddr).Port
	stop := capture("grpc.pcap", 65535, port)

	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	check(err, "grpc client")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 5 {
		out := new(wrapperspb.StringValue)
		check(conn.Invoke(ctx, "/test.Echo/Unary", wrapperspb.String(fmt.Sprintf("call %d", i)), out), "unary")
	}
	err = conn.Invoke(ctx, "/test.Echo/Unary", wrapperspb.String("fail"), new(wrapperspb.StringValue))
	if status.Code(err) != codes.PermissionDenied {
		log.Fatalf("record: unary fail: %v", err)
	}
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/test.Echo/Stream")
	check(err, "stream")
	check(st.SendMsg(wrapperspb.String("tick")), "send")
	check(st.CloseSend(), "close send")
	for {
		if err := st.RecvMsg(new(wrapperspb.StringValue)); err != nil {
			if !errors.Is(err, io.EOF) {
				log.Fatalf("record: stream: %v", err)
			}
			break
		}
	}
	h := healthpb.NewHealthClient(conn)
	_, err = h.Check(ctx, &healthpb.HealthCheckRequest{})
	check(err, "health")
	_, err = h.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"})
	if status.Code(err) != codes.NotFound {
		log.Fatalf("record: health of nope: %v", err)
	}
	check(conn.Close(), "close")
	stop()
}
