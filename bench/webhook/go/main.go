// Command webhookbench is the Go half of bench/webhook (not part of kuar itself):
//
//	webhookbench serve -addr 127.0.0.1:PORT -cert tls.crt -key tls.key
//	    a controller-runtime webhook server validating LoadTest creates with the same rules
//	    as kuar_loadtest.webhooks (scheme, requestsPerSecond cap, paths, DNS-1035 service),
//	    and a defaulter at /mutate-... (scheme, paths, duration; JSON patch)
//	webhookbench load -url https://127.0.0.1:PORT/path -ca ca.crt -conns 8 -duration 5s [-rate R]
//	    HTTPS/1.1 keep-alive load of LoadTest-create AdmissionReviews; closed loop by default,
//	    open loop at -rate reviews/s (latency measured from the intended send time).
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

	"k8s.io/apimachinery/pkg/util/validation"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

type loadTestSpec struct {
	Service           string   `json:"service"`
	Scheme            string   `json:"scheme"`
	RequestsPerSecond int64    `json:"requestsPerSecond"`
	Paths             []string `json:"paths"`
}

type loadTest struct {
	Spec loadTestSpec `json:"spec"`
}

const maxRPS = 50000

var dns1035 = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

func validate(obj *loadTest) []string {
	var errs []string
	s := obj.Spec
	if s.Scheme != "http" && s.Scheme != "https" {
		errs = append(errs, fmt.Sprintf(`spec.scheme: Unsupported value: %q: supported values: "http", "https"`, s.Scheme))
	}
	if s.RequestsPerSecond <= 0 {
		errs = append(errs, fmt.Sprintf("spec.requestsPerSecond: Invalid value: %d: must be greater than 0", s.RequestsPerSecond))
	} else if s.RequestsPerSecond > maxRPS {
		errs = append(errs, fmt.Sprintf("spec.requestsPerSecond: Invalid value: %d: must be at most %d", s.RequestsPerSecond, maxRPS))
	}
	for i, p := range s.Paths {
		if !strings.HasPrefix(p, "/") {
			errs = append(errs, fmt.Sprintf("spec.paths[%d]: Invalid value: %q: must start with '/'", i, p))
		}
	}
	if len(validation.IsDNS1035Label(s.Service)) > 0 || !dns1035.MatchString(s.Service) {
		errs = append(errs, fmt.Sprintf("spec.service: Invalid value: %q: a DNS-1035 label", s.Service))
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
	server.Register("/validate-beta-kuar-com-v1-loadtest", &webhook.Admission{Handler: handler})
	mutate := admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		var obj map[string]any
		if err := json.Unmarshal(req.Object.Raw, &obj); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		spec, _ := obj["spec"].(map[string]any)
		if spec == nil {
			return admission.Allowed("")
		}
		defaults := map[string]any{"scheme": "http", "paths": []any{"/"}, "duration": "60s"}
		for key, value := range defaults {
			if _, ok := spec[key]; !ok {
				spec[key] = value
			}
		}
		mutated, err := json.Marshal(obj)
		if err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		return admission.PatchResponseFromRaw(req.Object.Raw, mutated)
	})
	server.Register("/mutate-beta-kuar-com-v1-loadtest", &webhook.Admission{Handler: mutate})
	ctx := ctrl.SetupSignalHandler()
	if err := server.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func review(uid string) []byte {
	return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{` +
		`"uid":"` + uid + `","kind":{"group":"beta.kuar.com","version":"v1","kind":"LoadTest"},` +
		`"resource":{"group":"beta.kuar.com","version":"v1","resource":"loadtests"},` +
		`"requestKind":{"group":"beta.kuar.com","version":"v1","kind":"LoadTest"},` +
		`"requestResource":{"group":"beta.kuar.com","version":"v1","resource":"loadtests"},` +
		`"name":"my-loadtest","namespace":"default","operation":"CREATE",` +
		`"userInfo":{"username":"kuar-admin","groups":["system:masters","system:authenticated"]},` +
		`"object":{"apiVersion":"beta.kuar.com/v1","kind":"LoadTest","metadata":{"name":"my-loadtest",` +
		`"namespace":"default","creationTimestamp":null,"managedFields":[{"manager":"kubectl",` +
		`"operation":"Update","apiVersion":"beta.kuar.com/v1","fieldsType":"FieldsV1",` +
		`"fieldsV1":{"f:spec":{".":{},"f:paths":{},"f:requestsPerSecond":{},"f:scheme":{},` +
		`"f:service":{}}}}]},"spec":{"service":"my-service","scheme":"https",` +
		`"requestsPerSecond":1000,"paths":["/index.html","/login.html","/shares/my-shares/"]}},` +
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
