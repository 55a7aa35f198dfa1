package nodeagent

import (
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ProbeTracker turns a stream of probe results into a readiness verdict with Kubernetes'
// success and failure thresholds. The zero value is "not ready, no results yet", which is
// a container's readiness before its first probe.
type ProbeTracker struct {
	Ready     bool
	successes int32
	failures  int32
}

// Observe records one probe result and reports whether the verdict changed. Thresholds
// below 1 count as 1.
func (t *ProbeTracker) Observe(ok bool, successThreshold, failureThreshold int32) bool {
	successThreshold = max(successThreshold, 1)
	failureThreshold = max(failureThreshold, 1)
	before := t.Ready
	if ok {
		t.failures = 0
		t.successes++
		if t.successes >= successThreshold {
			t.Ready = true
		}
	} else {
		t.successes = 0
		t.failures++
		if t.failures >= failureThreshold {
			t.Ready = false
		}
	}
	return t.Ready != before
}

// PodRuntime is what the agent knows about a pod it runs, the input of PodStatus besides
// the Pod itself.
type PodRuntime struct {
	// PodIPs are the pod's addresses, primary family (IPv4) first. Empty while the pod's
	// network is not set up.
	PodIPs []netip.Addr
	// HostIPs are the node's addresses, IPv4 first.
	HostIPs []netip.Addr
	// StartedAt is when the workload started serving; zero while it has not.
	StartedAt time.Time
	// Ready holds each container's readiness by container name. A container that is
	// missing is not ready.
	Ready map[string]bool
	// StartError, when the pod could not be started, says why (shown as the containers'
	// waiting message).
	StartError string
	// Containers are the states of the containers that run programs, by name; the
	// others are the built-in workload's, running while the pod runs.
	Containers map[string]ContainerState
}

// PodStatus computes the status the agent reports for pod, from the pod's current status
// (whose fields the agent does not own are kept, for example qosClass and conditions of
// other writers) and what runs. Conditions keep their transition time while their status
// does not change. It is pure: now is the only clock.
func PodStatus(pod *corev1.Pod, rt PodRuntime, now time.Time) corev1.PodStatus {
	st := *pod.Status.DeepCopy()
	mnow := metav1.NewTime(now.Truncate(time.Second))
	running := !rt.StartedAt.IsZero() && len(rt.PodIPs) > 0

	st.HostIP, st.HostIPs = "", nil
	for i, a := range rt.HostIPs {
		if i == 0 {
			st.HostIP = a.String()
		}
		st.HostIPs = append(st.HostIPs, corev1.HostIP{IP: a.String()})
	}
	st.PodIP, st.PodIPs = "", nil
	for i, a := range rt.PodIPs {
		if i == 0 {
			st.PodIP = a.String()
		}
		st.PodIPs = append(st.PodIPs, corev1.PodIP{IP: a.String()})
	}
	if st.StartTime == nil {
		st.StartTime = &mnow
	}

	allReady := running
	statuses := make([]corev1.ContainerStatus, 0, len(pod.Spec.Containers))
	programs, programsDone, programsFailed := 0, 0, 0
	for _, c := range pod.Spec.Containers {
		if pst, ok := rt.Containers[c.Name]; ok && running {
			cs := containerStatus(c, string(pod.UID), pst, rt.Ready[c.Name])
			allReady = allReady && cs.Ready
			programs++
			if pst.Done && pst.Terminated != nil {
				programsDone++
				if pst.Terminated.ExitCode != 0 {
					programsFailed++
				}
			}
			statuses = append(statuses, cs)
			continue
		}
		cs := corev1.ContainerStatus{
			Name:    c.Name,
			Image:   c.Image,
			ImageID: "lab://" + c.Image,
		}
		ready := running && rt.Ready[c.Name]
		allReady = allReady && ready
		if running {
			started := true
			cs.Started = &started
			cs.Ready = ready
			cs.ContainerID = "lab://" + string(pod.UID) + "/" + c.Name
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(rt.StartedAt.Truncate(time.Second))}
		} else {
			started := false
			cs.Started = &started
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
			if rt.StartError != "" {
				cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "CreateContainerError", Message: rt.StartError}
			}
		}
		statuses = append(statuses, cs)
	}
	st.ContainerStatuses = statuses

	switch {
	case running && programs == len(pod.Spec.Containers) && programsDone == programs && pod.DeletionTimestamp == nil:
		// Every container has ended and none restarts (restartPolicy Never or OnFailure).
		st.Phase = corev1.PodSucceeded
		if programsFailed > 0 {
			st.Phase = corev1.PodFailed
		}
		allReady = false
	case running:
		st.Phase = corev1.PodRunning
	default:
		st.Phase = corev1.PodPending
	}

	cond := func(ok bool) corev1.ConditionStatus {
		if ok {
			return corev1.ConditionTrue
		}
		return corev1.ConditionFalse
	}
	notReadyReason := func(ok bool) string {
		if ok {
			return ""
		}
		return "ContainersNotReady"
	}
	setCondition(&st, corev1.PodScheduled, corev1.ConditionTrue, "", mnow, true)
	setCondition(&st, corev1.PodReadyToStartContainers, cond(len(rt.PodIPs) > 0), "", mnow, false)
	setCondition(&st, corev1.PodInitialized, corev1.ConditionTrue, "", mnow, false)
	setCondition(&st, corev1.ContainersReady, cond(allReady), notReadyReason(allReady), mnow, false)
	setCondition(&st, corev1.PodReady, cond(allReady), notReadyReason(allReady), mnow, false)
	return st
}

// setCondition sets the condition of type t, keeping its transition time when its status
// does not change. With keepExisting, an existing condition of that type is left alone
// (the scheduler owns PodScheduled).
func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, status corev1.ConditionStatus, reason string, now metav1.Time, keepExisting bool) {
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != t {
			continue
		}
		if keepExisting {
			return
		}
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status = status
		c.Reason = reason
		c.Message = ""
		return
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: status, Reason: reason, LastTransitionTime: now})
}
