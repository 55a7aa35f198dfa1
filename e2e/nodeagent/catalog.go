package nodeagent

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// DefaultLoadstoneRepository is the repository of Loadstone's image (the chart's
// image.repository); any tag matches.
const DefaultLoadstoneRepository = "ghcr.io/loadstone-lb/loadstone"

// ImageCatalog says how the agent runs a container of a given image: there are no images
// on a lab node, so a few well-known images map to programs on the host and every other
// image gets the built-in workload.
type ImageCatalog struct {
	// Binaries maps the programs of Loadstone's image ("speaker", "controller") to locally
	// built binaries.
	Binaries map[string]string
	// CoreDNS is the path of a CoreDNS binary for the CoreDNS images; empty: such
	// containers fail with a reason saying so.
	CoreDNS string
	// LoadstoneRepository is the repository of Loadstone's image
	// (DefaultLoadstoneRepository if empty).
	LoadstoneRepository string
}

// LaunchKind is how a container runs.
type LaunchKind int

const (
	// LaunchBuiltin serves the built-in HTTP/UDP workload from the agent process.
	LaunchBuiltin LaunchKind = iota
	// LaunchProgram runs a program with container-runtime semantics.
	LaunchProgram
)

// Launch is the catalog's answer for one container.
type Launch struct {
	Kind LaunchKind
	// Argv is the program's command line, before $(VAR) expansion; Argv[0] is a path or a
	// name looked up in the container's PATH.
	Argv []string
	// Error, when not empty, is why the container cannot run (it fails with it).
	Error string
	// DefaultPorts are the ports the built-in workload serves when the container declares
	// none (the port the real image listens on).
	DefaultPorts []WorkloadPort
}

// Image families of the catalog.
var (
	coreDNSRepos = map[string]bool{"registry.k8s.io/coredns/coredns": true, "docker.io/coredns/coredns": true, "k8s.gcr.io/coredns/coredns": true}
	// shellRepos map to the command run when the container gives none.
	shellRepos = map[string]string{
		"docker.io/library/busybox":   "sh",
		"docker.io/library/alpine":    "sh",
		"docker.io/nicolaka/netshoot": "sh",
		"docker.io/curlimages/curl":   "curl",
	}
	// serverPorts are the ports of well-known server images, served by the built-in
	// workload when the container declares no ports.
	serverPorts = map[string]int32{
		"docker.io/library/nginx":               80,
		"docker.io/library/httpd":               80,
		"docker.io/nginxinc/nginx-unprivileged": 8080,
		"docker.io/traefik/whoami":              80,
		"docker.io/hashicorp/http-echo":         5678,
	}
)

// ImageRepository returns the repository of an image reference, without tag or digest and
// with Docker Hub's implied parts made explicit: "nginx:1.27" -> "docker.io/library/nginx",
// "curlimages/curl" -> "docker.io/curlimages/curl", "ghcr.io/a/b:v1" -> "ghcr.io/a/b".
func ImageRepository(image string) string {
	ref, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	first, rest, hasSlash := strings.Cut(ref, "/")
	if !hasSlash {
		return "docker.io/library/" + ref
	}
	if !strings.ContainsAny(first, ".:") && first != "localhost" {
		return "docker.io/" + ref
	}
	if first == "index.docker.io" {
		first = "docker.io"
	}
	if first == "docker.io" && !strings.Contains(rest, "/") {
		return "docker.io/library/" + rest
	}
	return first + "/" + rest
}

// Resolve decides how container c runs. It is pure.
func (cat ImageCatalog) Resolve(c *corev1.Container) Launch {
	repo := ImageRepository(c.Image)
	loadstone := cat.LoadstoneRepository
	if loadstone == "" {
		loadstone = DefaultLoadstoneRepository
	}
	switch {
	case repo == ImageRepository(loadstone):
		argv := append(append([]string(nil), c.Command...), c.Args...)
		if len(c.Command) == 0 {
			return Launch{Kind: LaunchProgram, Error: "Loadstone's image has no default command: set command to /speaker or /controller"}
		}
		name := strings.TrimPrefix(c.Command[0], "/")
		bin := cat.Binaries[name]
		if bin == "" {
			return Launch{Kind: LaunchProgram, Error: "the lab has no binary for " + c.Command[0] + " of Loadstone's image"}
		}
		argv[0] = bin
		return Launch{Kind: LaunchProgram, Argv: argv}
	case coreDNSRepos[repo]:
		if cat.CoreDNS == "" {
			return Launch{Kind: LaunchProgram, Error: "the lab has no CoreDNS binary (node agent --coredns-binary is not set)"}
		}
		argv := []string{cat.CoreDNS}
		if len(c.Command) > 0 {
			// The image's entrypoint is /coredns; a command replaces it.
			argv = append([]string{cat.CoreDNS}, c.Command[1:]...)
		}
		return Launch{Kind: LaunchProgram, Argv: append(argv, c.Args...)}
	case shellRepos[repo] != "":
		switch {
		case len(c.Command) > 0:
			return Launch{Kind: LaunchProgram, Argv: append(append([]string(nil), c.Command...), c.Args...)}
		case repo == "docker.io/curlimages/curl" || len(c.Args) == 0:
			// curl's image runs curl with the args; the others' default command is a
			// shell, which args replace.
			if repo != "docker.io/curlimages/curl" {
				return Launch{Kind: LaunchProgram, Argv: []string{shellRepos[repo]}}
			}
			return Launch{Kind: LaunchProgram, Argv: append([]string{"curl"}, c.Args...)}
		default:
			return Launch{Kind: LaunchProgram, Argv: append([]string(nil), c.Args...)}
		}
	default:
		l := Launch{Kind: LaunchBuiltin}
		if p, ok := serverPorts[repo]; ok {
			l.DefaultPorts = []WorkloadPort{{Port: p, Protocol: corev1.ProtocolTCP}}
		}
		return l
	}
}

// containerPorts is what the built-in workload serves for container c: its declared TCP
// and UDP ports, or the image's default ones when it declares none.
func containerPorts(c *corev1.Container, l Launch) []WorkloadPort {
	if len(c.Ports) == 0 {
		return l.DefaultPorts
	}
	return WorkloadPorts(&corev1.PodSpec{Containers: []corev1.Container{*c}})
}
