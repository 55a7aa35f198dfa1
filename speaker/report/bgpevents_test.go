package report

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"

	"github.com/loadstone-lb/loadstone/api/v1beta1"
	"github.com/loadstone-lb/loadstone/speaker/routes"
)

func TestBGPEventsDiff(t *testing.T) {
	addr := netip.MustParseAddr("192.0.2.1")
	sess := func(state v1beta1.BGPSessionState, bfd v1beta1.BFDSessionState, lastErr, diag string) BGPSession {
		return BGPSession{Peer: "router", Address: addr, State: state, BFDState: bfd, BFDProfile: "fast", LastError: lastErr, BFDLastDownDiag: diag}
	}
	type step struct {
		sessions []BGPSession
		problems []routes.Problem
		want     []string // reason: note
	}
	svcProblem := routes.Problem{Kind: routes.KindService, Name: "ns/web", Reason: routes.ReasonLocalTrafficAggregated, Message: "m"}
	peerProblem := routes.Problem{Kind: routes.KindBGPPeer, Name: "router", Reason: routes.ReasonPasswordSecretMissing, Message: "no secret"}
	cases := []struct {
		name  string
		steps []step
	}{
		{"a fresh session starting says nothing until it is up", []step{
			{sessions: []BGPSession{sess(v1beta1.BGPStateActive, "", "", "")}},
			{sessions: []BGPSession{sess(v1beta1.BGPStateEstablished, "", "", "")},
				want: []string{"BGPSessionUp: node n1: BGP session to 192.0.2.1 established"}},
			{sessions: []BGPSession{sess(v1beta1.BGPStateEstablished, "", "", "")}},
		}},
		{"a session found established at start is reported up", []step{
			{sessions: []BGPSession{sess(v1beta1.BGPStateEstablished, "", "", "")},
				want: []string{"BGPSessionUp: node n1: BGP session to 192.0.2.1 established"}},
		}},
		{"down with its reason, once", []step{
			{sessions: []BGPSession{sess(v1beta1.BGPStateEstablished, v1beta1.BFDStateUp, "", "")},
				want: []string{"BGPSessionUp: node n1: BGP session to 192.0.2.1 established"}},
			{sessions: []BGPSession{sess(v1beta1.BGPStateIdle, v1beta1.BFDStateDown, "BFD session down", "ControlDetectionTimeExpired")},
				want: []string{"BGPSessionDown: node n1: BGP session to 192.0.2.1 went down (now Idle): BFD session down",
					"BFDSessionDown: node n1: BFD session to 192.0.2.1 went down (ControlDetectionTimeExpired)"}},
			{sessions: []BGPSession{sess(v1beta1.BGPStateActive, v1beta1.BFDStateDown, "BFD session down", "ControlDetectionTimeExpired")}},
			{sessions: []BGPSession{sess(v1beta1.BGPStateEstablished, v1beta1.BFDStateUp, "", "")},
				want: []string{"BGPSessionUp: node n1: BGP session to 192.0.2.1 established",
					"BFDSessionUp: node n1: BFD session to 192.0.2.1 up (profile fast)"}},
		}},
		{"a failing session reports each new error", []step{
			{sessions: []BGPSession{sess(v1beta1.BGPStateActive, "", "dial tcp: i/o timeout", "")},
				want: []string{"BGPSessionFailing: node n1: BGP session to 192.0.2.1 not established (Active): dial tcp: i/o timeout"}},
			{sessions: []BGPSession{sess(v1beta1.BGPStateConnect, "", "dial tcp: i/o timeout", "")}},
			{sessions: []BGPSession{sess(v1beta1.BGPStateIdle, "", "bad peer AS", "")},
				want: []string{"BGPSessionFailing: node n1: BGP session to 192.0.2.1 not established (Idle): bad peer AS"}},
		}},
		{"problems once while they last", []step{
			{problems: []routes.Problem{svcProblem, peerProblem},
				want: []string{"BGPConfigProblem: node n1: LocalTrafficAggregated: m", "BGPConfigProblem: node n1: PasswordSecretMissing: no secret"}},
			{problems: []routes.Problem{svcProblem, peerProblem}},
			{problems: []routes.Problem{peerProblem}},
			{problems: []routes.Problem{svcProblem, peerProblem},
				want: []string{"BGPConfigProblem: node n1: LocalTrafficAggregated: m"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := NewBGPEvents()
			for i, st := range tc.steps {
				var got []string
				for _, ev := range e.Diff("n1", st.sessions, st.problems) {
					got = append(got, ev.Reason+": "+ev.Note)
					if ev.Reason == EventBGPProblem && ev.Peer == "" && ev.Service != (types.NamespacedName{Namespace: "ns", Name: "web"}) {
						t.Errorf("step %d: problem Event regards nothing: %+v", i, ev)
					}
				}
				if diff := cmp.Diff(st.want, got); diff != "" {
					t.Errorf("step %d (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}
