// Command webhookbench is the Go half of bench/webhook (not part of kuar itself):
//
//	webhookbench serve -port PORT -cert-dir DIR
//	    a controller-runtime webhook server validating LoadTest v2 objects (the storage
//	    version, which the API server hands to every admission webhook) with the same rules
//	    as kuar_loadtest.webhooks: spec.target.scheme, the spec.load.requestsPerSecond cap,
//	    spec.target.paths (leading '/', no spaces or control characters), a DNS-1035
//	    spec.target.service; and a defaulter at /mutate-... (target.scheme, target.paths,
//	    load.duration; JSON patch)
//	webhookbench load -url https://127.0.0.1:PORT/path -ca ca.crt -conns 8 -duration 5s [-rate R]
//	    HTTPS/1.1 keep-alive load of LoadTest-create AdmissionReviews (beta.kuar.com/v2);
//	    closed loop by default, open loop at -rate reviews/s (latency measured from the
//	    intended send time).
//	    A failed review (refused, timed out, HTTP error, wrong or disallowed answer) counts in
//	    the percentiles as the -timeout value and in "errors"; rps counts successes only.
//	    Prints one JSON line: {"count","errors","seconds","rps","p50_ms","p99_ms","max_ms"}.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"k8s.io/apimachinery/pkg/util/validation"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// The paths kuar_loadtest.webhooks serves (kubebuilder's naming, storage version v2).
const (
	validatePath = "/validate-beta-kuar-com-v2-loadtest"
	mutatePath   = "/mutate-beta-kuar-com-v2-loadtest"
)

type target struct {
	Service string   `json:"service"`
	Scheme  string   `json:"scheme"`
	Paths   []string `json:"paths"`
}

type loadSpec struct {
	RequestsPerSecond *int64 `json:"requestsPerSecond"`
}

type loadTestSpec struct {
	Target target   `json:"target"`
	Load   loadSpec `json:"load"`
}

type loadTest struct {
	Spec loadTestSpec `json:"spec"`
}

const maxRPS = 50000

var dns1035 = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// pathProblem is kuar_loadgen.spec.path_problem: a leading '/', no whitespace, no control
// characters (CR/LF would inject headers into the worker's requests).
func pathProblem(p string) string {
	if !strings.HasPrefix(p, "/") {
		return "must start with '/'"
	}
	for i, r := range []rune(p) {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Sprintf("must not contain spaces or control characters (%q at %d)", r, i)
		}
	}
	return ""
}

func validate(obj *loadTest) []string {
	var errs []string
	t, l := obj.Spec.Target, obj.Spec.Load
	if t.Scheme != "http" && t.Scheme != "https" {
		errs = append(errs, fmt.Sprintf(`spec.target.scheme: Unsupported value: %q: supported values: "http", "https"`, t.Scheme))
	}
	if l.RequestsPerSecond == nil {
		errs = append(errs, "spec.load.requestsPerSecond: Required value: or spec.load.stages")
	} else if rps := *l.RequestsPerSecond; rps <= 0 {
		errs = append(errs, fmt.Sprintf("spec.load.requestsPerSecond: Invalid value: %d: must be greater than 0", rps))
	} else if rps > maxRPS {
		errs = append(errs, fmt.Sprintf("spec.load.requestsPerSecond: Invalid value: %d: must be at most %d", rps, maxRPS))
	}
	for i, p := range t.Paths {
		if problem := pathProblem(p); problem != "" {
			errs = append(errs, fmt.Sprintf("spec.target.paths[%d]: Invalid value: %q: %s", i, p, problem))
		}
	}
	if len(validation.IsDNS1035Label(t.Service)) > 0 || !dns1035.MatchString(t.Service) {
		errs = append(errs, fmt.Sprintf("spec.target.service: Invalid value: %q: a DNS-1035 label", t.Service))
	}
	return errs
}

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	host := fs.String("host", "127.0.0.1", "bind address")
	port := fs.Int("port", 9443, "port")
	certDir := fs.String("cert-dir", "", "folder with tls.crt and tls.key")
	_ = fs.Parse(args)
	ctrl.SetLogger(zap.New(zap.UseDevMode(false), zap.Level(zapLevelError())))
	server := webhook.NewServer(webhook.Options{Host: *host, Port: *port, CertDir: *certDir})
	handler := admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		var obj loadTest
		if err := json.Unmarshal(req.Object.Raw, &obj); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		if errs := validate(&obj); len(errs) > 0 {
			return admission.Denied(strings.Join(errs, "; "))
		}
		return admission.Allowed("")
	})
	server.Register(validatePath, &webhook.Admission{Handler: handler})
	mutate := admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		var obj map[string]any
		if err := json.Unmarshal(req.Object.Raw, &obj); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		spec, _ := obj["spec"].(map[string]any)
		if spec == nil {
			return admission.Allowed("")
		}
		// kuar_loadtest's defaulter: target.scheme, target.paths (also when empty) and
		// load.duration (unless stages give the duration)
		if t, _ := spec["target"].(map[string]any); t != nil {
			if _, ok := t["scheme"]; !ok {
				t["scheme"] = "http"
			}
			if paths, _ := t["paths"].([]any); len(paths) == 0 {
				t["paths"] = []any{"/"}
			}
		}
		if l, _ := spec["load"].(map[string]any); l != nil {
			stages, _ := l["stages"].([]any)
			if _, ok := l["duration"]; !ok && len(stages) == 0 {
				l["duration"] = "60s"
			}
		}
		mutated, err := json.Marshal(obj)
		if err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		return admission.PatchResponseFromRaw(req.Object.Raw, mutated)
	})
	server.Register(mutatePath, &webhook.Admission{Handler: mutate})
	ctx := ctrl.SetupSignalHandler()
	if err := server.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func review(uid string) []byte {
	return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{` +
		`"uid":"` + uid + `","kind":{"group":"beta.kuar.com","version":"v2","kind":"LoadTest"},` +
		`"resource":{"group":"beta.kuar.com","version":"v2","resource":"loadtests"},` +
		`"requestKind":{"group":"beta.kuar.com","version":"v2","kind":"LoadTest"},` +
		`"requestResource":{"group":"beta.kuar.com","version":"v2","resource":"loadtests"},` +
		`"name":"my-loadtest","namespace":"default","operation":"CREATE",` +
		`"userInfo":{"username":"kuar-admin","groups":["system:masters","system:authenticated"]},` +
		`"object":{"apiVersion":"beta.kuar.com/v2","kind":"LoadTest","metadata":{"name":"my-loadtest",` +
		`"namespace":"default","creationTimestamp":null,"managedFields":[{"manager":"kubectl",` +
		`"operation":"Update","apiVersion":"beta.kuar.com/v2","fieldsType":"FieldsV1",` +
		`"fieldsV1":{"f:spec":{".":{},"f:load":{".":{},"f:requestsPerSecond":{}},` +
		`"f:target":{".":{},"f:paths":{},"f:scheme":{},"f:service":{}}}}}]},` +
		`"spec":{"target":{"service":"my-service","scheme":"https",` +
		`"paths":["/index.html","/login.html","/shares/my-shares/"]},` +
		`"load":{"requestsPerSecond":1000,"duration":"60s"}}},` +
		`"oldObject":null,"dryRun":false,"options":{"apiVersion":"meta.k8s.io/v1","kind":"CreateOptions"}}}`)
}

type result struct {
	Count   int     `json:"count"`
	Errors  int64   `json:"errors"`
	Seconds float64 `json:"seconds"`
	RPS     float64 `json:"rps"`
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
	First   string  `json:"first_error,omitempty"`
}

func load(args []string) {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	url := fs.String("url", "", "webhook URL")
	caFile := fs.String("ca", "", "CA bundle")
	conns := fs.Int("conns", 8, "connections (closed loop: concurrent requests)")
	duration := fs.Duration("duration", 5*time.Second, "how long")
	warmup := fs.Duration("warmup", time.Second, "unmeasured warm-up")
	rate := fs.Float64("rate", 0, "open loop: reviews per second (0 = closed loop)")
	timeout := fs.Duration("timeout", 10*time.Second,
		"client timeout; a failed review counts as this latency (10 s: the API server's maximum)")
	_ = fs.Parse(args)
	ca, err := os.ReadFile(*caFile)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	transport := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConns:        *conns * 2,
		MaxIdleConnsPerHost: *conns * 2,
		MaxConnsPerHost:     *conns,
		ForceAttemptHTTP2:   false,
		IdleConnTimeout:     90 * time.Second,
	}
	client := &http.Client{Transport: transport, Timeout: *timeout}
	failedMs := float64(timeout.Microseconds()) / 1000
	var counter, errors atomic.Int64
	var firstErr atomic.Value
	send := func() bool {
		uid := "u-" + strconv.FormatInt(counter.Add(1), 10)
		resp, err := client.Post(*url, "application/json", bytes.NewReader(review(uid)))
		if err != nil {
			errors.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var answer struct {
			Response struct {
				UID     string `json:"uid"`
				Allowed bool   `json:"allowed"`
			} `json:"response"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(body, &answer) != nil ||
			answer.Response.UID != uid || !answer.Response.Allowed {
			errors.Add(1)
			firstErr.CompareAndSwap(nil, fmt.Sprintf("HTTP %d: %.200s", resp.StatusCode, body))
			return false
		}
		return true
	}
	// warm up: open the connections
	end := time.Now().Add(*warmup)
	var wg sync.WaitGroup
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				send()
			}
		}()
	}
	wg.Wait()
	errors.Store(0)
	var mu sync.Mutex
	var lat []float64
	var ok int
	start := time.Now()
	stop := start.Add(*duration)
	if *rate <= 0 {
		for i := 0; i < *conns; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				local := make([]float64, 0, 1<<16)
				for {
					t0 := time.Now()
					if !t0.Before(stop) {
						break
					}
					if send() {
						local = append(local, float64(time.Since(t0).Microseconds())/1000)
					} else {
						local = append(local, -failedMs) // negative: failed (see below)
					}
				}
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			}()
		}
		wg.Wait()
	} else {
		interval := time.Duration(float64(time.Second) / *rate)
		sem := make(chan struct{}, *conns*4)
		n := int(duration.Seconds() * *rate)
		for i := 0; i < n; i++ {
			intended := start.Add(time.Duration(i) * interval)
			if d := time.Until(intended); d > 0 {
				time.Sleep(d)
			}
			sem <- struct{}{}
			wg.Add(1)
			go func(intended time.Time) {
				defer wg.Done()
				ms := -failedMs
				if send() {
					ms = float64(time.Since(intended).Microseconds()) / 1000
				}
				<-sem
				mu.Lock()
				lat = append(lat, ms)
				mu.Unlock()
			}(intended)
		}
		wg.Wait()
	}
	elapsed := time.Since(start).Seconds()
	for i, ms := range lat {
		if ms < 0 {
			lat[i] = -ms // a failure, at the timeout value
		} else {
			ok++
		}
	}
	sort.Float64s(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(p*float64(len(lat)-1))]
	}
	r := result{Count: ok, Errors: errors.Load(), Seconds: elapsed,
		RPS: float64(ok) / elapsed, P50: pct(0.50), P99: pct(0.99), Max: pct(1)}
	if v := firstErr.Load(); v != nil {
		r.First = v.(string)
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: webhookbench serve|load ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2:])
	case "load":
		load(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}
