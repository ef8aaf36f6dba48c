package clusterview

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// svcRec is a Service and the index entries it made.
type svcRec struct {
	svc   *Service
	ips   []netip.Addr
	ports []nodePort
}

// sliceRec is an EndpointSlice reduced to its Service and the addresses
// worth indexing: those of a headless Service's pods (a client reaches them
// by the Service's DNS name, without a ClusterIP) and endpoints that are
// not pods at all (a Service without selector in front of, say, a database
// outside the cluster). Other endpoints are pods, which the pod index names.
type sliceRec struct {
	namespace, svcName string
	headless           bool
	ips                []netip.Addr
}

// service returns the slice's Service as the view knows it, or a stand-in
// carrying its name when the Service itself has not arrived (yet).
func (r *sliceRec) service(v *View) *Service {
	if s := v.services[r.namespace+"/"+r.svcName]; s != nil {
		return s.svc
	}
	return &Service{Namespace: r.namespace, Name: r.svcName, Headless: r.headless}
}

func protoNumber(p corev1.Protocol) uint8 {
	switch p {
	case corev1.ProtocolUDP:
		return 17
	case corev1.ProtocolSCTP:
		return 132
	}
	return 6 // TCP is the default
}

func (v *View) upsertServiceLocked(s *corev1.Service) {
	key := s.Namespace + "/" + s.Name
	v.deleteServiceLocked(key)
	svc := &Service{Name: s.Name, Namespace: intern(s.Namespace), Headless: s.Spec.ClusterIP == corev1.ClusterIPNone}
	rec := &svcRec{svc: svc}
	addIP := func(str string) {
		if a, err := netip.ParseAddr(str); err == nil {
			rec.ips = append(rec.ips, a.Unmap())
			v.svcIPs[a.Unmap()] = svc
		}
	}
	for _, ip := range s.Spec.ClusterIPs {
		if ip != corev1.ClusterIPNone {
			addIP(ip)
		}
	}
	if len(s.Spec.ClusterIPs) == 0 && s.Spec.ClusterIP != "" && s.Spec.ClusterIP != corev1.ClusterIPNone {
		addIP(s.Spec.ClusterIP)
	}
	for _, ip := range s.Spec.ExternalIPs {
		addIP(ip)
	}
	for _, in := range s.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			addIP(in.IP)
		}
	}
	for _, p := range s.Spec.Ports {
		if p.NodePort != 0 {
			np := nodePort{proto: protoNumber(p.Protocol), port: uint16(p.NodePort)}
			rec.ports = append(rec.ports, np)
			v.ports[np] = svc
		}
	}
	v.services[key] = rec
}

func (v *View) deleteServiceLocked(key string) {
	rec := v.services[key]
	if rec == nil {
		return
	}
	for _, a := range rec.ips {
		if v.svcIPs[a] == rec.svc {
			delete(v.svcIPs, a)
		}
	}
	for _, p := range rec.ports {
		if v.ports[p] == rec.svc {
			delete(v.ports, p)
		}
	}
	delete(v.services, key)
}

// headlessLocked returns the headless Service a pod address is an
// endpoint of, if any.
func (v *View) headlessLocked(a netip.Addr) *Service {
	for _, r := range v.sliceIPs[a] {
		if r.headless {
			return r.service(v)
		}
	}
	return nil
}

// labelHeadless marks the EndpointSlices of headless Services.
const labelHeadless = "service.kubernetes.io/headless"

func (v *View) upsertSliceLocked(s *discoveryv1.EndpointSlice) {
	key := s.Namespace + "/" + s.Name
	v.deleteSliceLocked(key)
	svcName := s.Labels[discoveryv1.LabelServiceName]
	if svcName == "" {
		return
	}
	_, headless := s.Labels[labelHeadless]
	rec := &sliceRec{namespace: intern(s.Namespace), svcName: intern(svcName), headless: headless}
	for _, ep := range s.Endpoints {
		isPod := ep.TargetRef != nil && ep.TargetRef.Kind == KindPod
		if isPod && !headless {
			continue
		}
		for _, str := range ep.Addresses {
			if a, err := netip.ParseAddr(str); err == nil && !containsAddr(rec.ips, a.Unmap()) {
				rec.ips = append(rec.ips, a.Unmap())
			}
		}
	}
	if len(rec.ips) == 0 {
		return
	}
	for _, a := range rec.ips {
		v.sliceIPs[a] = append(v.sliceIPs[a], rec)
	}
	v.slices[key] = rec
}

func (v *View) deleteSliceLocked(key string) {
	rec := v.slices[key]
	if rec == nil {
		return
	}
	for _, a := range rec.ips {
		recs := v.sliceIPs[a]
		for i, r := range recs {
			if r == rec {
				recs = append(recs[:i], recs[i+1:]...)
				break
			}
		}
		if len(recs) == 0 {
			delete(v.sliceIPs, a)
		} else {
			v.sliceIPs[a] = recs
		}
	}
	delete(v.slices, key)
}

func (v *View) upsertNodeLocked(n *corev1.Node) {
	v.deleteNodeLocked(n.Name)
	name := intern(n.Name)
	var addrs []netip.Addr
	for _, na := range n.Status.Addresses {
		if na.Type != corev1.NodeInternalIP && na.Type != corev1.NodeExternalIP {
			continue
		}
		if a, err := netip.ParseAddr(na.Address); err == nil && !containsAddr(addrs, a.Unmap()) {
			addrs = append(addrs, a.Unmap())
			v.nodeIPs[a.Unmap()] = name
		}
	}
	v.nodes[name] = addrs
}

func (v *View) deleteNodeLocked(name string) {
	addrs, ok := v.nodes[name]
	if !ok {
		return
	}
	for _, a := range addrs {
		if v.nodeIPs[a] == name {
			delete(v.nodeIPs, a)
		}
	}
	delete(v.nodes, name)
}
