// Package buildinfo exports what a Loadstone binary was built from as the Prometheus
// gauge loadstone_build_info{version, revision, goversion} = 1, the convention for
// build metadata: a query joins it to other series by instance, and a rollout shows as
// two versions side by side. The values come from internal/logging.ReadBuild, the same
// the binaries log at start and print on --version (version and commit set at link
// time by `make build`).
package buildinfo
