// Command ctrlbench is the controller-runtime side of bench/controller: the same trivial
// reconcile as the kuar and kopf sides (set status.observedGeneration to metadata.generation
// with a merge patch of the status subresource), on typed objects (types.go, as a kubebuilder
// project declares its kind) read from the cache, or with -unstructured on
// unstructured.Unstructured objects (the generic form, which decodes into maps).
//
// It prints, one line each, to stdout (times are Unix nanoseconds, wall clock):
//
//	START <t>          just before the manager starts
//	SYNCED <t>         once the informer of the benchmark kind has synced
//	R <name> <t>       whenever a reconcile starts
//
// Client-side rate limiting is off (rest.Config QPS < 0) and the workqueue's overall token
// bucket is raised, as for the other two sides. Everything else is controller-runtime's
// default, including the priority queue that v0.24 turns on by default.
//
// With -ceiling it is no controller at all but the API server's ceiling for the cold start
// with writes: it lists the namespace's objects once (START before, SYNCED after the list),
// then -workers goroutines merge-patch each object's status with client-go's client, with no
// cache, queue or watch. No controller can write faster than that on the same machine.
//
// go.mod pins controller-runtime v0.24.x, the release built against k8s.io/* v0.36 (Kubernetes
// 1.36, the version of kuar's control plane); v0.23.x is built against v0.35.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// out buffers the protocol lines and is flushed every 50 ms (as on the Python sides): one
// pipe write per reconcile would wake the driver each time.
var out = struct {
	sync.Mutex
	w *bufio.Writer
}{w: bufio.NewWriterSize(os.Stdout, 1<<16)}

func emit(flush bool, format string, args ...any) {
	out.Lock()
	fmt.Fprintf(out.w, format, args...)
	if flush {
		out.w.Flush()
	}
	out.Unlock()
}

func flushEvery(d time.Duration) {
	for range time.Tick(d) {
		out.Lock()
		out.w.Flush()
		out.Unlock()
	}
}

type typedReconciler struct {
	client client.Client
}

func (r *typedReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	emit(false, "R %s %d\n", req.Name, time.Now().UnixNano())
	obj := &BenchLoad{}
	if err := r.client.Get(ctx, req.NamespacedName, obj); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	observed := obj.Status.ObservedGeneration
	if observed != nil && *observed == obj.Generation {
		return reconcile.Result{}, nil
	}
	patch := fmt.Appendf(nil, `{"status":{"observedGeneration":%d}}`, obj.Generation)
	err := r.client.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch))
	return reconcile.Result{}, client.IgnoreNotFound(err)
}

type reconciler struct {
	client client.Client
	gvk    schema.GroupVersionKind
}

func (r *reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	emit(false, "R %s %d\n", req.Name, time.Now().UnixNano())
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(r.gvk)
	if err := r.client.Get(ctx, req.NamespacedName, obj); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	generation := obj.GetGeneration()
	observed, found, _ := unstructured.NestedInt64(obj.Object, "status", "observedGeneration")
	if found && observed == generation {
		return reconcile.Result{}, nil
	}
	patch := fmt.Appendf(nil, `{"status":{"observedGeneration":%d}}`, generation)
	err := r.client.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch))
	return reconcile.Result{}, client.IgnoreNotFound(err)
}

func main() {
	// Our own flag set: controller-runtime registers --kubeconfig on the global one.
	flags := flag.NewFlagSet("ctrlbench", flag.ExitOnError)
	kubeconfig := flags.String("kubeconfig", "", "kubeconfig file")
	namespace := flags.String("namespace", "", "namespace to watch")
	workers := flags.Int("workers", 10, "MaxConcurrentReconciles")
	group := flags.String("group", "bench.kuar.com", "API group")
	version := flags.String("version", "v1", "API version")
	kind := flags.String("kind", "BenchLoad", "kind")
	expect := flags.Int("expect", 0,
		"objects expected: the cache-sync timeout is the larger of 2 min and 60 s + 10 ms each")
	unstructuredObjects := flags.Bool("unstructured", false,
		"reconcile unstructured.Unstructured objects instead of the typed BenchLoad")
	ceiling := flags.Bool("ceiling", false,
		"no controller: list once, then patch every object's status with -workers goroutines")
	_ = flags.Parse(os.Args[1:])
	ctrl.SetLogger(logr.Discard())

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail(err)
	}
	cfg.QPS = -1 // no client-side rate limiting
	cfg.Burst = 1 << 20
	gvk := schema.GroupVersionKind{Group: *group, Version: *version, Kind: *kind}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		fail(err)
	}
	addBenchLoad(scheme, gvk.GroupVersion())
	if *ceiling {
		if err := writeAll(cfg, scheme, *namespace, *workers); err != nil {
			fail(err)
		}
		return
	}
	clientOptions := client.Options{}
	if *unstructuredObjects {
		// Read unstructured objects from the cache, as typed ones are by default.
		clientOptions.Cache = &client.CacheOptions{Unstructured: true}
	}

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		Cache: cache.Options{
			DefaultNamespaces: map[string]cache.Config{*namespace: {}},
			// kuar drops managedFields by default; do the same here so both caches hold
			// the same content.
			DefaultTransform: cache.TransformStripManagedFields(),
		},
		Client:                 clientOptions,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		LeaderElection:         false,
	})
	if err != nil {
		fail(err)
	}
	limiter := workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](
			5*time.Millisecond, 1000*time.Second),
		&workqueue.TypedBucketRateLimiter[reconcile.Request]{
			Limiter: rate.NewLimiter(rate.Limit(1e6), 1<<20)},
	)
	var primary client.Object = &BenchLoad{}
	var r reconcile.Reconciler = &typedReconciler{client: mgr.GetClient()}
	if *unstructuredObjects {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		primary, r = u, &reconciler{client: mgr.GetClient(), gvk: gvk}
	}
	err = ctrl.NewControllerManagedBy(mgr).
		For(primary).
		WithOptions(controller.Options{MaxConcurrentReconciles: *workers, RateLimiter: limiter,
			CacheSyncTimeout: syncTimeout(*expect)}).
		Complete(r)
	if err != nil {
		fail(err)
	}
	err = mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		var probe client.Object = &BenchLoad{}
		if *unstructuredObjects {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(gvk)
			probe = u
		}
		// GetInformer blocks until this kind's (shared) informer has synced.
		if _, err := mgr.GetCache().GetInformer(ctx, probe); err != nil {
			return err
		}
		emit(true, "SYNCED %d\n", time.Now().UnixNano())
		<-ctx.Done()
		return nil
	}))
	if err != nil {
		fail(err)
	}
	go flushEvery(50 * time.Millisecond)
	emit(true, "START %d\n", time.Now().UnixNano())
	err = mgr.Start(ctrl.SetupSignalHandler())
	emit(true, "")
	if err != nil {
		fail(err)
	}
}

// writeAll is the -ceiling mode: one list, then every status patched by workers goroutines;
// it then waits to be killed, like the controllers (the driver watches for the statuses).
func writeAll(cfg *rest.Config, scheme *runtime.Scheme, namespace string, workers int) error {
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	ctx := context.Background()
	emit(true, "START %d\n", time.Now().UnixNano())
	list := &BenchLoadList{}
	if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return err
	}
	emit(true, "SYNCED %d\n", time.Now().UnixNano())
	go flushEvery(50 * time.Millisecond)
	items := make(chan *BenchLoad)
	var wg sync.WaitGroup
	var failed error
	var once sync.Once
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for obj := range items {
				emit(false, "R %s %d\n", obj.Name, time.Now().UnixNano())
				patch := fmt.Appendf(nil, `{"status":{"observedGeneration":%d}}`, obj.Generation)
				err := c.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch))
				if err != nil {
					once.Do(func() { failed = err })
				}
			}
		}()
	}
	for i := range list.Items {
		items <- &list.Items[i]
	}
	close(items)
	wg.Wait()
	if failed != nil {
		return failed
	}
	select {}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "ctrlbench:", err)
	os.Exit(1)
}

// syncTimeout is the cache-sync timeout for n expected objects: controller-runtime's default
// (2 min) unless the scale row's list needs longer; the kuar side uses the same rule.
func syncTimeout(n int) time.Duration {
	return max(2*time.Minute, 60*time.Second+time.Duration(n)*10*time.Millisecond)
}
