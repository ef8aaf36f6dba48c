package clusterview

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// The reflectors hold whole lists while they sync (a streamed initial list
// waits in a temporary store until its end): a 50k-pod cluster is several
// hundred MB of decoded pods for a moment. So every object is reduced, as
// it is decoded, to the fields the view reads; what stays is a few hundred
// bytes per object. metadata.resourceVersion stays: the reflector resumes
// watches from it.

func stripMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		CreationTimestamp: m.CreationTimestamp, DeletionTimestamp: m.DeletionTimestamp,
	}
}

func stripPod(p *corev1.Pod) {
	meta := stripMeta(&p.ObjectMeta)
	if h, ok := p.Labels[podTemplateHash]; ok {
		meta.Labels = map[string]string{podTemplateHash: h}
	}
	for _, ref := range p.OwnerReferences {
		if ref.Controller != nil && *ref.Controller {
			meta.OwnerReferences = []metav1.OwnerReference{{Kind: ref.Kind, Name: ref.Name, Controller: ref.Controller}}
		}
	}
	*p = corev1.Pod{
		ObjectMeta: meta,
		Spec:       corev1.PodSpec{NodeName: p.Spec.NodeName, HostNetwork: p.Spec.HostNetwork},
		Status:     corev1.PodStatus{Phase: p.Status.Phase, PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs},
	}
}

func stripService(s *corev1.Service) {
	ports := make([]corev1.ServicePort, 0, len(s.Spec.Ports))
	for _, p := range s.Spec.Ports {
		if p.NodePort != 0 {
			ports = append(ports, corev1.ServicePort{Protocol: p.Protocol, NodePort: p.NodePort})
		}
	}
	var ingress []corev1.LoadBalancerIngress
	for _, in := range s.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			ingress = append(ingress, corev1.LoadBalancerIngress{IP: in.IP})
		}
	}
	*s = corev1.Service{
		ObjectMeta: stripMeta(&s.ObjectMeta),
		Spec:       corev1.ServiceSpec{ClusterIP: s.Spec.ClusterIP, ClusterIPs: s.Spec.ClusterIPs, ExternalIPs: s.Spec.ExternalIPs, Ports: ports},
		Status:     corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: ingress}},
	}
}

func stripSlice(s *discoveryv1.EndpointSlice) {
	meta := stripMeta(&s.ObjectMeta)
	meta.Labels = map[string]string{}
	for _, k := range []string{discoveryv1.LabelServiceName, labelHeadless} {
		if v, ok := s.Labels[k]; ok {
			meta.Labels[k] = v
		}
	}
	_, headless := s.Labels[labelHeadless]
	var eps []discoveryv1.Endpoint
	for _, ep := range s.Endpoints {
		isPod := ep.TargetRef != nil && ep.TargetRef.Kind == KindPod
		if isPod && !headless {
			continue // named by the pod index; not kept
		}
		e := discoveryv1.Endpoint{Addresses: ep.Addresses}
		if isPod {
			e.TargetRef = &corev1.ObjectReference{Kind: KindPod}
		}
		eps = append(eps, e)
	}
	*s = discoveryv1.EndpointSlice{ObjectMeta: meta, Endpoints: eps}
}

func stripNode(n *corev1.Node) {
	*n = corev1.Node{ObjectMeta: stripMeta(&n.ObjectMeta), Status: corev1.NodeStatus{Addresses: n.Status.Addresses}}
}

// stripObject reduces one object of the view's resources in place.
func stripObject(obj runtime.Object) {
	switch o := obj.(type) {
	case *corev1.Pod:
		stripPod(o)
	case *corev1.Service:
		stripService(o)
	case *discoveryv1.EndpointSlice:
		stripSlice(o)
	case *corev1.Node:
		stripNode(o)
	}
}

// stripList reduces the items of a page of a list in place.
func stripList(obj runtime.Object) {
	switch l := obj.(type) {
	case *corev1.PodList:
		for i := range l.Items {
			stripPod(&l.Items[i])
		}
	case *corev1.ServiceList:
		for i := range l.Items {
			stripService(&l.Items[i])
		}
	case *discoveryv1.EndpointSliceList:
		for i := range l.Items {
			stripSlice(&l.Items[i])
		}
	case *corev1.NodeList:
		for i := range l.Items {
			stripNode(&l.Items[i])
		}
	}
}

// strippedWatch passes a watch's events on with their objects reduced.
// Bookmarks pass as they are (the end of a streamed initial list is a
// bookmark annotation). An error event (the server ended the watch: an
// expired resource version after a restart, say) is reported through
// failed: the view is not current again until the reflector's next list.
type strippedWatch struct {
	in   watch.Interface
	out  chan watch.Event
	done chan struct{}
	once sync.Once
}

func stripWatch(w watch.Interface, failed func()) watch.Interface {
	s := &strippedWatch{in: w, out: make(chan watch.Event), done: make(chan struct{})}
	go func() {
		defer close(s.out)
		for ev := range w.ResultChan() {
			switch ev.Type {
			case watch.Added, watch.Modified, watch.Deleted:
				stripObject(ev.Object)
			case watch.Error:
				failed()
			}
			select {
			case s.out <- ev:
			case <-s.done:
				return
			}
		}
	}()
	return s
}

func (s *strippedWatch) Stop() {
	s.once.Do(func() {
		close(s.done)
		s.in.Stop()
	})
}

func (s *strippedWatch) ResultChan() <-chan watch.Event { return s.out }
