package v1beta1

// FinalizerPoolProtection is the finalizer the controller puts on every IPAddressPool, as
// Kubernetes protects a PersistentVolumeClaim in use (kubernetes.io/pvc-protection): a
// pool deleted while Services hold its addresses stays Terminating, its addresses stay
// with those Services (it hands out nothing new), and the controller removes the
// finalizer once the last of them has released its address.
const FinalizerPoolProtection = "loadstone.io/pool-protection"
