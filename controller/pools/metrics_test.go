package pools

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/loadstone-lb/loadstone/api/model"
	"github.com/loadstone-lb/loadstone/api/v1beta1"
)

// TestInvalidObjectsGauge: after a real Build, the gauge counts per kind the objects
// whose Valid condition is False, every kind is exported, and a fix brings it to 0.
func TestInvalidObjectsGauge(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	pool := func(name string, addrs ...string) *v1beta1.IPAddressPool {
		return &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
	}
	ad := func(name string, pools ...string) *v1beta1.L2Advertisement {
		return &v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: pools}}
	}
	judge := func(objs ...configObject) map[string]float64 {
		t.Helper()
		var s model.Snapshot
		for _, o := range objs {
			if err := s.Add(o.obj); err != nil {
				t.Fatal(err)
			}
		}
		cfg, problems := model.Build(s)
		m.setInvalid(problems, objs)
		got := map[string]float64{}
		falses := map[string]float64{}
		for _, k := range configKinds() {
			got[k] = testutil.ToFloat64(m.invalid.WithLabelValues(k))
		}
		for _, o := range objs {
			if model.ValidCondition(cfg, problems, o.kind, o.obj.GetName(), 1).Status == metav1.ConditionFalse {
				falses[o.kind]++
			}
		}
		for _, k := range configKinds() {
			if got[k] != falses[k] {
				t.Errorf("%s: gauge %v, but %v objects have Valid=False", k, got[k], falses[k])
			}
		}
		return got
	}
	got := judge(
		configObject{model.KindIPAddressPool, pool("good", "192.0.2.0/28")},
		configObject{model.KindIPAddressPool, pool("bad1", "not-an-address")},
		configObject{model.KindIPAddressPool, pool("bad2", "198.51.100.9-198.51.100.1")},
		configObject{model.KindL2Advertisement, ad("ok", "good")},
	)
	if got[model.KindIPAddressPool] != 2 || got[model.KindL2Advertisement] != 0 || got[model.KindBGPPeer] != 0 {
		t.Errorf("gauge %v, want 2 invalid pools and nothing else", got)
	}
	if n := testutil.CollectAndCount(m.invalid); n != len(configKinds()) {
		t.Errorf("%d series, want one per kind (%d)", n, len(configKinds()))
	}
	got = judge(configObject{model.KindIPAddressPool, pool("good", "192.0.2.0/28")},
		configObject{model.KindL2Advertisement, ad("ok", "good")})
	if got[model.KindIPAddressPool] != 0 {
		t.Errorf("after the fix: gauge %v", got)
	}
}
