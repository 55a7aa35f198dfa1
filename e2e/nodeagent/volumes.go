package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServiceAccountDir is where a container finds its service-account credentials.
const ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// referencedObjects lists the Secrets and ConfigMaps a pod's containers and volumes
// refer to.
func referencedObjects(pod *corev1.Pod) (secrets, configMaps []string) {
	s, cm := map[string]bool{}, map[string]bool{}
	for _, c := range pod.Spec.Containers {
		for _, ef := range c.EnvFrom {
			if ef.SecretRef != nil {
				s[ef.SecretRef.Name] = true
			}
			if ef.ConfigMapRef != nil {
				cm[ef.ConfigMapRef.Name] = true
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				s[e.ValueFrom.SecretKeyRef.Name] = true
			}
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				cm[e.ValueFrom.ConfigMapKeyRef.Name] = true
			}
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil {
			s[v.Secret.SecretName] = true
		}
		if v.ConfigMap != nil {
			cm[v.ConfigMap.Name] = true
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.Secret != nil {
					s[src.Secret.Name] = true
				}
				if src.ConfigMap != nil {
					cm[src.ConfigMap.Name] = true
				}
			}
		}
	}
	keys := func(m map[string]bool) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	return keys(s), keys(cm)
}

// fetchSources reads the Secrets and ConfigMaps pod refers to; a missing one is nil.
func (a *Agent) fetchSources(ctx context.Context, pod *corev1.Pod) (EnvSources, error) {
	src := EnvSources{Secrets: map[string]map[string][]byte{}, ConfigMaps: map[string]map[string]string{}}
	secrets, cms := referencedObjects(pod)
	for _, name := range secrets {
		s, err := a.cfg.Client.CoreV1().Secrets(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			src.Secrets[name] = nil
		case err != nil:
			return src, fmt.Errorf("get secret %s: %w", name, err)
		default:
			data := map[string][]byte{}
			for k, v := range s.Data {
				data[k] = v
			}
			for k, v := range s.StringData {
				data[k] = []byte(v)
			}
			src.Secrets[name] = data
		}
	}
	for _, name := range cms {
		cm, err := a.cfg.Client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			src.ConfigMaps[name] = nil
		case err != nil:
			return src, fmt.Errorf("get configmap %s: %w", name, err)
		default:
			data := map[string]string{}
			for k, v := range cm.Data {
				data[k] = v
			}
			for k, v := range cm.BinaryData {
				data[k] = string(v)
			}
			src.ConfigMaps[name] = data
		}
	}
	return src, nil
}

// volumeFile is one file of a volume.
type volumeFile struct {
	path string
	data []byte
	mode os.FileMode
}

func fileMode(item, def *int32, fallback os.FileMode) os.FileMode {
	switch {
	case item != nil:
		return os.FileMode(*item) & 0o777
	case def != nil:
		return os.FileMode(*def) & 0o777
	}
	return fallback
}

// keyFiles turns a Secret's or ConfigMap's data into files: every key, or the items.
func keyFiles(data map[string][]byte, items []corev1.KeyToPath, def *int32, optional bool, what string) ([]volumeFile, error) {
	var out []volumeFile
	if len(items) == 0 {
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, volumeFile{path: k, data: data[k], mode: fileMode(nil, def, 0o644)})
		}
		return out, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("%s has no key %q", what, it.Key)
		}
		out = append(out, volumeFile{path: it.Path, data: v, mode: fileMode(it.Mode, def, 0o644)})
	}
	return out, nil
}

func cmBytes(m map[string]string) map[string][]byte {
	if m == nil {
		return nil
	}
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out
}

// tokenFunc returns a service-account token for the pod.
type tokenFunc func(ctx context.Context, sa string, audience string, seconds int64) (string, error)

// volumeFiles computes the files of a Secret, ConfigMap, downward-API or projected volume.
func volumeFiles(ctx context.Context, pod *corev1.Pod, v corev1.Volume, src EnvSources, token tokenFunc) ([]volumeFile, error) {
	bool0 := func(b *bool) bool { return b != nil && *b }
	downward := func(items []corev1.DownwardAPIVolumeFile, def *int32) ([]volumeFile, error) {
		var out []volumeFile
		for _, it := range items {
			if it.FieldRef == nil {
				continue
			}
			val, err := podField(pod, it.FieldRef.FieldPath, src)
			if err != nil {
				return nil, err
			}
			out = append(out, volumeFile{path: it.Path, data: []byte(val), mode: fileMode(it.Mode, def, 0o644)})
		}
		return out, nil
	}
	switch {
	case v.Secret != nil:
		data := src.Secrets[v.Secret.SecretName]
		if data == nil && !bool0(v.Secret.Optional) {
			return nil, fmt.Errorf("secret %q not found", v.Secret.SecretName)
		}
		return keyFiles(data, v.Secret.Items, v.Secret.DefaultMode, bool0(v.Secret.Optional), "secret "+v.Secret.SecretName)
	case v.ConfigMap != nil:
		data := src.ConfigMaps[v.ConfigMap.Name]
		if data == nil && !bool0(v.ConfigMap.Optional) {
			return nil, fmt.Errorf("configmap %q not found", v.ConfigMap.Name)
		}
		return keyFiles(cmBytes(data), v.ConfigMap.Items, v.ConfigMap.DefaultMode, bool0(v.ConfigMap.Optional), "configmap "+v.ConfigMap.Name)
	case v.DownwardAPI != nil:
		return downward(v.DownwardAPI.Items, v.DownwardAPI.DefaultMode)
	case v.Projected != nil:
		var out []volumeFile
		def := v.Projected.DefaultMode
		for _, s := range v.Projected.Sources {
			var files []volumeFile
			var err error
			switch {
			case s.Secret != nil:
				data := src.Secrets[s.Secret.Name]
				if data == nil && !bool0(s.Secret.Optional) {
					return nil, fmt.Errorf("secret %q not found", s.Secret.Name)
				}
				files, err = keyFiles(data, s.Secret.Items, def, bool0(s.Secret.Optional), "secret "+s.Secret.Name)
			case s.ConfigMap != nil:
				data := src.ConfigMaps[s.ConfigMap.Name]
				if data == nil && !bool0(s.ConfigMap.Optional) {
					return nil, fmt.Errorf("configmap %q not found", s.ConfigMap.Name)
				}
				files, err = keyFiles(cmBytes(data), s.ConfigMap.Items, def, bool0(s.ConfigMap.Optional), "configmap "+s.ConfigMap.Name)
			case s.DownwardAPI != nil:
				files, err = downward(s.DownwardAPI.Items, def)
			case s.ServiceAccountToken != nil:
				secs := int64(3607)
				if s.ServiceAccountToken.ExpirationSeconds != nil {
					secs = *s.ServiceAccountToken.ExpirationSeconds
				}
				var tok string
				tok, err = token(ctx, serviceAccountOf(pod), s.ServiceAccountToken.Audience, secs)
				files = []volumeFile{{path: s.ServiceAccountToken.Path, data: []byte(tok), mode: fileMode(nil, def, 0o644)}}
			}
			if err != nil {
				return nil, err
			}
			out = append(out, files...)
		}
		return out, nil
	}
	return nil, nil
}

func serviceAccountOf(pod *corev1.Pod) string {
	if pod.Spec.ServiceAccountName != "" {
		return pod.Spec.ServiceAccountName
	}
	return "default"
}

// writeVolume writes files under dir (made anew), refusing paths that leave it.
func writeVolume(dir string, files []volumeFile) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		clean := filepath.Clean(f.path)
		if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			return fmt.Errorf("volume file path %q leaves the volume", f.path)
		}
		p := filepath.Join(dir, clean)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// podVolumes materializes the pod's volumes under podDir/volumes and returns each
// volume's host path by name.
func (a *Agent) podVolumes(ctx context.Context, pod *corev1.Pod, podDir string, src EnvSources) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		dir := filepath.Join(podDir, "volumes", v.Name)
		switch {
		case v.HostPath != nil:
			out[v.Name] = v.HostPath.Path
			if v.HostPath.Type != nil && (*v.HostPath.Type == corev1.HostPathDirectoryOrCreate) {
				if err := os.MkdirAll(v.HostPath.Path, 0o755); err != nil {
					return nil, fmt.Errorf("volume %s: %w", v.Name, err)
				}
			}
			continue
		case v.EmptyDir != nil:
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			if err := os.Chmod(dir, 0o777); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			out[v.Name] = dir
			continue
		case v.Secret == nil && v.ConfigMap == nil && v.DownwardAPI == nil && v.Projected == nil:
			return nil, fmt.Errorf("volume %s: type not supported by the lab's node agent", v.Name)
		}
		files, err := volumeFiles(ctx, pod, v, src, a.token(pod))
		if err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		if err := writeVolume(dir, files); err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		out[v.Name] = dir
	}
	return out, nil
}

// token returns a TokenRequest function bound to pod.
func (a *Agent) token(pod *corev1.Pod) tokenFunc {
	return func(ctx context.Context, sa, audience string, seconds int64) (string, error) {
		req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: &seconds,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		}}
		if audience != "" {
			req.Spec.Audiences = []string{audience}
		}
		tr, err := a.cfg.Client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
		if err != nil {
			return "", fmt.Errorf("token of service account %s: %w", sa, err)
		}
		return tr.Status.Token, nil
	}
}

// serviceAccountVolume writes the service-account files (token, ca.crt, namespace) a
// pod gets when no volume is mounted at ServiceAccountDir (the API server's admission
// adds one normally), or returns "" when the pod opts out.
func (a *Agent) serviceAccountVolume(ctx context.Context, pod *corev1.Pod, podDir string) (string, error) {
	if pod.Spec.AutomountServiceAccountToken != nil && !*pod.Spec.AutomountServiceAccountToken {
		return "", nil
	}
	tok, err := a.token(pod)(ctx, serviceAccountOf(pod), "", 3607)
	if err != nil {
		return "", err
	}
	ca, err := a.clusterCA(ctx, pod.Namespace)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(podDir, "serviceaccount")
	err = writeVolume(dir, []volumeFile{
		{path: "token", data: []byte(tok), mode: 0o644},
		{path: "ca.crt", data: ca, mode: 0o644},
		{path: "namespace", data: []byte(pod.Namespace), mode: 0o644},
	})
	return dir, err
}

// clusterCA is the cluster's CA bundle: Config.ClusterCAFile, else the namespace's
// kube-root-ca.crt ConfigMap.
func (a *Agent) clusterCA(ctx context.Context, ns string) ([]byte, error) {
	if a.cfg.ClusterCAFile != "" {
		return os.ReadFile(a.cfg.ClusterCAFile)
	}
	cm, err := a.cfg.Client.CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, errors.New("no cluster CA: configmap kube-root-ca.crt not found and no --cluster-ca-file")
	}
	if err != nil {
		return nil, err
	}
	return []byte(cm.Data["ca.crt"]), nil
}
