//go:build tools

// The crictl command is built from its own module path; this file pins it in go.mod.
package addons

import _ "sigs.k8s.io/cri-tools/cmd/crictl"
