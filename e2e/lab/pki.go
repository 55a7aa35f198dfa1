package lab

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Identity is one client of the API server: a certificate with this subject.
type Identity struct {
	// File is the base name of the certificate, key and kubeconfig.
	File string
	// User is the certificate's CommonName (the Kubernetes user name).
	User string
	// Groups are the certificate's Organizations (the Kubernetes groups).
	Groups []string
}

// Identities of the lab's components. Each has its own certificate and kubeconfig.
func identities(nodes []Node) []Identity {
	ids := []Identity{
		{File: "admin", User: "loadstone-lab-admin", Groups: []string{"system:masters"}},
		{File: "kube-controller-manager", User: "system:kube-controller-manager"},
		{File: "kube-scheduler", User: "system:kube-scheduler"},
		{File: "kube-proxy", User: "system:kube-proxy"},
		{File: "loadstone-controller", User: ControllerUser, Groups: []string{ControllerGroup}},
	}
	for _, n := range nodes {
		ids = append(ids,
			Identity{File: "nodeagent-" + n.Name, User: "system:node:" + n.Name, Groups: []string{"system:nodes"}},
			Identity{File: "speaker-" + n.Name, User: SpeakerUserPrefix + n.Name, Groups: []string{SpeakerGroup}},
		)
	}
	return ids
}

// Users and groups the lab binds Loadstone's ClusterRoles to.
const (
	ControllerUser    = "loadstone:controller"
	ControllerGroup   = "loadstone:controllers"
	SpeakerUserPrefix = "loadstone:speaker:"
	SpeakerGroup      = "loadstone:speakers"
)

type ca struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

func newSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

func newCA() (*ca, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: "loadstone-lab-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &ca{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// issue signs a leaf certificate and returns its PEM certificate and key.
func (c *ca) issue(cn string, orgs []string, server bool, ips []net.IP, dns []string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(),
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		IPAddresses:  ips,
		DNSNames:     dns,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

// pkiPaths are the files generatePKI writes.
type pkiPaths struct {
	dir                   string
	caCert, caKey         string
	serverCert, serverKey string
	saKey, saPub          string
	// The API server's client certificate towards the kubelets (node agents).
	kubeletClientCert, kubeletClientKey string
}

// KubeletClientUser is the user of the API server's kubelet client certificate (kubeadm's
// name). Its group system:masters lets it use every node's kubelet API (the agents
// authorize it with a SubjectAccessReview for nodes/proxy).
const KubeletClientUser = "kube-apiserver-kubelet-client"

func newPKIPaths(dir string) pkiPaths {
	p := func(n string) string { return filepath.Join(dir, n) }
	return pkiPaths{dir: dir, caCert: p("ca.crt"), caKey: p("ca.key"),
		serverCert: p("apiserver.crt"), serverKey: p("apiserver.key"),
		saKey: p("sa.key"), saPub: p("sa.pub"),
		kubeletClientCert: p("apiserver-kubelet-client.crt"), kubeletClientKey: p("apiserver-kubelet-client.key")}
}

// CACertPath is the lab's CA certificate (PEM): it signs every server and client
// certificate of the lab.
func (l *Lab) CACertPath() string { return l.pki.caCert }

// KubeletCertPaths returns the serving certificate and key of n's kubelet API (the node
// agent's), valid for the node's IPv4 and IPv6 addresses and its name.
func (l *Lab) KubeletCertPaths(n Node) (cert, key string) {
	return filepath.Join(l.pki.dir, "kubelet-"+n.Name+".crt"), filepath.Join(l.pki.dir, "kubelet-"+n.Name+".key")
}

// KubeconfigPath returns the kubeconfig of an identity (by its File name).
func (l *Lab) KubeconfigPath(file string) string {
	return filepath.Join(l.cfg.Dir, "kubeconfig", file+".kubeconfig")
}

// generatePKI writes a fresh CA, the API server's serving certificate and its kubelet
// client certificate, each node's kubelet serving certificate, the service-account signing
// key pair, and a certificate + kubeconfig per identity.
func (l *Lab) generatePKI() error {
	pp := l.pki
	if err := os.MkdirAll(pp.dir, 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(l.cfg.Dir, "kubeconfig"), 0o755); err != nil {
		return err
	}
	c, err := newCA()
	if err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	caKey, err := x509.MarshalECPrivateKey(c.key.(*ecdsa.PrivateKey))
	if err != nil {
		return err
	}
	files := map[string][]byte{
		pp.caCert: c.pem,
		pp.caKey:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: caKey}),
	}
	ips := []net.IP{net.ParseIP(ControlIP), net.ParseIP(ControlIP6), net.ParseIP(KubernetesServiceIP),
		net.ParseIP("2001:db8:2000::1"), net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	dns := []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local", "localhost"}
	sc, sk, err := c.issue("kube-apiserver", nil, true, ips, dns)
	if err != nil {
		return fmt.Errorf("apiserver certificate: %w", err)
	}
	files[pp.serverCert], files[pp.serverKey] = sc, sk
	kc, kk, err := c.issue(KubeletClientUser, []string{"system:masters"}, false, nil, nil)
	if err != nil {
		return fmt.Errorf("apiserver kubelet client certificate: %w", err)
	}
	files[pp.kubeletClientCert], files[pp.kubeletClientKey] = kc, kk
	for _, n := range l.nodes {
		var nodeIPs []net.IP
		for _, a := range []netip.Addr{n.IP, n.IP6} {
			if a.IsValid() {
				nodeIPs = append(nodeIPs, a.AsSlice())
			}
		}
		nc, nk, err := c.issue("system:node:"+n.Name, []string{"system:nodes"}, true, nodeIPs, []string{n.Name})
		if err != nil {
			return fmt.Errorf("kubelet serving certificate of %s: %w", n.Name, err)
		}
		cert, key := l.KubeletCertPaths(n)
		files[cert], files[key] = nc, nk
	}

	sa, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return err
	}
	files[pp.saKey] = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(sa)})
	files[pp.saPub] = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	for path, b := range files {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return err
		}
	}
	for _, id := range identities(l.nodes) {
		cert, key, err := c.issue(id.User, id.Groups, false, nil, nil)
		if err != nil {
			return fmt.Errorf("certificate for %s: %w", id.User, err)
		}
		if err := os.WriteFile(filepath.Join(pp.dir, id.File+".crt"), cert, 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(pp.dir, id.File+".key"), key, 0o600); err != nil {
			return err
		}
		server := APIServerURL
		if id.File == "admin" {
			// The root namespace's admin (kubectl, tests) goes through the relay.
			server = "https://" + HostAPIAddr
			if err := writeKubeconfig(l.KubeconfigPath("admin-in-lab"), APIServerURL, id.User, c.pem, cert, key); err != nil {
				return err
			}
		}
		if err := writeKubeconfig(l.KubeconfigPath(id.File), server, id.User, c.pem, cert, key); err != nil {
			return err
		}
	}
	return nil
}

func writeKubeconfig(path, server, user string, caPEM, cert, key []byte) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["lab"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts["lab"] = &clientcmdapi.Context{Cluster: "lab", AuthInfo: user}
	cfg.CurrentContext = "lab"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return err
	}
	// Kubeconfigs hold private keys; the lab runs as root and so do its readers.
	return os.Chmod(path, 0o600)
}
