package main

// The typed Go form of the benchmark's BenchLoad kind, as a kubebuilder project would declare
// it (api/v1/benchload_types.go), with the deep copies controller-gen would generate written
// out by hand (the benchmark must build with `go build` alone).

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// BenchLoadSpec mirrors bench/controller/workload.py's BenchLoadSpec.
type BenchLoadSpec struct {
	Service           string   `json:"service"`
	Scheme            string   `json:"scheme,omitempty"`
	RequestsPerSecond int64    `json:"requestsPerSecond"`
	Paths             []string `json:"paths,omitempty"`
	Port              *int64   `json:"port,omitempty"`
	Duration          string   `json:"duration,omitempty"`
	Workers           int64    `json:"workers,omitempty"`
}

// BenchLoadStatus mirrors BenchLoadStatus.
type BenchLoadStatus struct {
	ObservedGeneration *int64             `json:"observedGeneration,omitempty"`
	Phase              string             `json:"phase,omitempty"`
	Conditions         []metav1.Condition `json:"conditions,omitempty"`
}

// BenchLoad is the benchmark's kind.
type BenchLoad struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BenchLoadSpec   `json:"spec"`
	Status            BenchLoadStatus `json:"status,omitempty"`
}

// BenchLoadList is a list of BenchLoads.
type BenchLoadList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BenchLoad `json:"items"`
}

func (in *BenchLoad) DeepCopyInto(out *BenchLoad) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.Spec = in.Spec
	if in.Spec.Paths != nil {
		out.Spec.Paths = append([]string(nil), in.Spec.Paths...)
	}
	if in.Spec.Port != nil {
		port := *in.Spec.Port
		out.Spec.Port = &port
	}
	out.Status = in.Status
	if in.Status.ObservedGeneration != nil {
		gen := *in.Status.ObservedGeneration
		out.Status.ObservedGeneration = &gen
	}
	if in.Status.Conditions != nil {
		out.Status.Conditions = make([]metav1.Condition, len(in.Status.Conditions))
		for i := range in.Status.Conditions {
			in.Status.Conditions[i].DeepCopyInto(&out.Status.Conditions[i])
		}
	}
}

func (in *BenchLoad) DeepCopy() *BenchLoad {
	if in == nil {
		return nil
	}
	out := new(BenchLoad)
	in.DeepCopyInto(out)
	return out
}

func (in *BenchLoad) DeepCopyObject() runtime.Object { return in.DeepCopy() }

func (in *BenchLoadList) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := new(BenchLoadList)
	*out = *in
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]BenchLoad, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
	return out
}

// addBenchLoad registers the typed kind under gv (as kubebuilder's SchemeBuilder does).
func addBenchLoad(scheme *runtime.Scheme, gv schema.GroupVersion) {
	scheme.AddKnownTypes(gv, &BenchLoad{}, &BenchLoadList{})
	metav1.AddToGroupVersion(scheme, gv)
}
