package clusterview

import (
	"net/netip"
	"regexp"
	"strconv"
	"unique"

	corev1 "k8s.io/api/core/v1"
)

// podRec is a pod and the addresses it claims.
type podRec struct {
	pod *Pod
	ips []netip.Addr
}

// claim is one pod's hold on an address: from when this view saw it take
// the address (0: since before the view knew the address at all) until it
// saw it release it (0: still held).
type claim struct {
	pod      *Pod
	from, to int64 // unix nanoseconds, local clock
	batch    uint64
}

// history is the pods an address has had, oldest first; at most one claim
// is open.
type history struct {
	claims []claim
}

// at returns the pod that held the address at time t.
func (h *history) at(t int64) *Pod {
	for i := len(h.claims) - 1; i >= 0; i-- {
		c := &h.claims[i]
		if c.from <= t && (c.to == 0 || t < c.to) {
			return c.pod
		}
	}
	return nil
}

// prune drops claims released before cutoff; true when none is left.
func (h *history) prune(cutoff int64) bool {
	kept := h.claims[:0]
	for _, c := range h.claims {
		if c.to == 0 || c.to >= cutoff {
			kept = append(kept, c)
		}
	}
	clear(h.claims[len(kept):])
	h.claims = kept
	return len(kept) == 0
}

// outranks reports whether a keeps an address b also claims: a live pod
// over a terminating one, else the newer one (the address was handed out
// again after the older pod let it go).
func outranks(a, b *Pod) bool {
	if a.terminating != b.terminating {
		return !a.terminating
	}
	return a.created.After(b.created)
}

// claimLocked records that p holds a at time now. batch is the Replace
// batch when the claim comes from a list (0 for a watch event).
func (v *View) claimLocked(a netip.Addr, p *Pod, now int64, batch uint64) {
	h := v.ips[a]
	if h == nil {
		h = &history{}
		v.ips[a] = h
	}
	for i := range h.claims {
		if h.claims[i].pod.UID == p.UID {
			// Known claim: newer data about the same pod. A claim once
			// closed by a newer owner is never reopened.
			h.claims[i].pod = p
			return
		}
	}
	from := int64(0)
	if len(h.claims) > 0 {
		from = now
	}
	for i := range h.claims {
		c := &h.claims[i]
		if c.to != 0 {
			continue
		}
		if outranks(c.pod, p) {
			// The address has a better owner: p's claim is stale on arrival
			// (an old pod listed after the new one). Keep it closed so later
			// updates of p do not reopen it.
			h.claims = append(h.claims, claim{pod: p, from: now, to: now})
			return
		}
		if batch != 0 && c.batch == batch && c.from == 0 {
			// Both come from the same initial list: the loser never held
			// the address as far as this view knows.
			c.from, c.to = now, now
			from = 0
			continue
		}
		c.to = now
	}
	h.claims = append(h.claims, claim{pod: p, from: from, batch: batch})
}

// releaseLocked closes p's claim on a.
func (v *View) releaseLocked(a netip.Addr, uid string, now int64) {
	h := v.ips[a]
	if h == nil {
		return
	}
	for i := range h.claims {
		if c := &h.claims[i]; c.pod.UID == uid && c.to == 0 {
			c.to = now
		}
	}
}

// upsertPodLocked applies a pod's current state.
func (v *View) upsertPodLocked(p *corev1.Pod, now int64, batch uint64) {
	uid := string(p.UID)
	rec := v.pods[uid]
	np := toPod(p)
	if rec != nil && *rec.pod == *np {
		np = rec.pod // unchanged: keep the published pointer
	}
	ips := podIPs(p)
	if rec == nil {
		rec = &podRec{}
		v.pods[uid] = rec
	}
	for _, old := range rec.ips {
		if !containsAddr(ips, old) {
			v.releaseLocked(old, uid, now)
		}
	}
	rec.pod, rec.ips = np, ips
	for _, a := range ips {
		v.claimLocked(a, np, now, batch)
	}
}

func (v *View) deletePodLocked(uid string, now int64) {
	rec := v.pods[uid]
	if rec == nil {
		return
	}
	for _, a := range rec.ips {
		v.releaseLocked(a, uid, now)
	}
	delete(v.pods, uid)
}

func containsAddr(s []netip.Addr, a netip.Addr) bool {
	for _, x := range s {
		if x == a {
			return true
		}
	}
	return false
}

// podIPs are the addresses a pod holds as its own: none for host-network
// pods (their address is the node's, resolved as the node) and none once
// the pod has finished (its address is free for another pod).
func podIPs(p *corev1.Pod) []netip.Addr {
	if p.Spec.HostNetwork || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return nil
	}
	var out []netip.Addr
	add := func(s string) {
		if a, err := netip.ParseAddr(s); err == nil && !containsAddr(out, a.Unmap()) {
			out = append(out, a.Unmap())
		}
	}
	for _, ip := range p.Status.PodIPs {
		add(ip.IP)
	}
	if len(out) == 0 && p.Status.PodIP != "" {
		add(p.Status.PodIP)
	}
	return out
}

func toPod(p *corev1.Pod) *Pod {
	return &Pod{
		UID:         string(p.UID),
		Name:        p.Name,
		Namespace:   intern(p.Namespace),
		Node:        intern(p.Spec.NodeName),
		Workload:    workloadOf(p),
		created:     p.CreationTimestamp.Time,
		terminating: p.DeletionTimestamp != nil,
	}
}

// intern shares one copy of strings many objects repeat (namespaces, node
// and workload names).
func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}

// podTemplateHash is the label the Deployment controller puts on the pods
// of a ReplicaSet it names <deployment>-<hash>.
const podTemplateHash = "pod-template-hash"

// cronJobName matches the Jobs a CronJob creates: <cronjob>-<scheduled
// time in minutes since the epoch>.
var cronJobName = regexp.MustCompile(`^(.+)-(\d{8,})$`)

// cronJobSkewMinutes bounds how far a Job's time suffix may be from its
// pod's creation for the Job to count as a CronJob's: otherwise the digits
// are part of a name someone chose (a date, a build number).
const cronJobSkewMinutes = 24 * 60

// workloadOf derives a pod's workload from its controller reference, by
// the naming conventions of the Deployment and CronJob controllers rather
// than by watching ReplicaSets and Jobs: no extra watch, RBAC or memory, and
// the same rules as the k8sattributes processor, so a workload gets the
// same name whether this view or k8sattributes names it.
func workloadOf(p *corev1.Pod) Workload {
	for _, ref := range p.OwnerReferences {
		if ref.Controller == nil || !*ref.Controller {
			continue
		}
		switch ref.Kind {
		case KindReplicaSet:
			if h := p.Labels[podTemplateHash]; h != "" && len(ref.Name) > len(h)+1 && ref.Name[len(ref.Name)-len(h)-1:] == "-"+h {
				return Workload{Kind: KindDeployment, Name: intern(ref.Name[:len(ref.Name)-len(h)-1])}
			}
		case KindJob:
			if m := cronJobName.FindStringSubmatch(ref.Name); m != nil {
				if mins, err := strconv.ParseInt(m[2], 10, 64); err == nil {
					d := p.CreationTimestamp.Unix()/60 - mins
					if d >= -cronJobSkewMinutes && d <= cronJobSkewMinutes {
						return Workload{Kind: KindCronJob, Name: intern(m[1])}
					}
				}
			}
		case "Node":
			// A static pod's mirror: the kubelet owns it, not a workload.
			return Workload{Kind: KindPod, Name: p.Name}
		}
		return Workload{Kind: intern(ref.Kind), Name: intern(ref.Name)}
	}
	return Workload{Kind: KindPod, Name: p.Name}
}
