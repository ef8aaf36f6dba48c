// Package semconv declares every name of ebpfflow's telemetry contract once:
// event names, attribute keys, metric names and units, and the attribute
// keys of self-telemetry. Names follow OpenTelemetry semantic conventions
// (v1.45) where one exists; ours live under `ebpfflow.`. docs/telemetry.md
// is the contract in prose; the receiver, the anomaly_detection components
// and the end-to-end tests all take their names from here, and a test fails
// when a name's string literal appears in other non-test code.
package semconv // import "github.com/ebpfflow/ebpfflow/internal/semconv"

// Event names (LogRecord EventName; the `event.name` attribute mirrors it).
const (
	EventFlow    = "network.flow"
	EventDrop    = "network.drop"
	EventDNS     = "dns.lookup"
	EventAnomaly = "anomaly"

	// AttrEventName is deprecated in semconv; it mirrors EventName for
	// backends that do not read EventName yet.
	AttrEventName = "event.name"
)

// Resource attributes: the local workload.
const (
	AttrContainerID     = "container.id"
	AttrPodUID          = "k8s.pod.uid"
	AttrPodIP           = "k8s.pod.ip"
	AttrNodeName        = "k8s.node.name"
	AttrHostName        = "host.name"
	AttrProcessPID      = "process.pid"
	AttrProcessExecName = "process.executable.name"
	AttrCgroupPath      = "process.linux.cgroup"
	// AttrServiceName is the workload's name when known, else the
	// executable's (see docs/telemetry.md).
	AttrServiceName = "service.name"
)

// Sides of an edge: both-side identity attributes are a side's prefix on a
// resource attribute key ("source.k8s.pod.uid"); see OnSide.
const (
	SideSource      = "source"
	SideDestination = "destination"
)

// OnSide returns the key of a resource attribute as it names one side of a
// record's edge: OnSide(SideSource, AttrPodUID) is "source.k8s.pod.uid".
func OnSide(side, key string) string { return side + "." + key }

// Kubernetes identity of one side of a record, from the cluster view:
// OnSide(SideDestination, AttrK8sWorkloadName) is
// "destination.k8s.workload.name". The side on this node is the resource
// (k8sattributes names it); records carry the other side, drops both.
const (
	AttrK8sNamespaceName = "k8s.namespace.name"
	AttrK8sWorkloadKind  = "k8s.workload.kind"
	// The backend that answered a connection to a Service address (the
	// destination address is the Service's, as the client used it).
	AttrBackendAddr    = "ebpfflow.destination.backend.address"
	AttrBackendPort    = "ebpfflow.destination.backend.port"
	AttrBackendPodName = "ebpfflow.destination.backend.k8s.pod.name"
)

// Workload-edge metrics: source workload → destination workload:port,
// servicegraph-style ("client" and "server" name the workloads, so a
// service map can be drawn from the metrics alone). Each connection is
// counted once in the cluster: by the node of its client, or by the node of
// its server when the client is outside the cluster.
const (
	SideClient = "client"
	SideServer = "server"

	AttrEdgeClient = SideClient // the client workload's name
	AttrEdgeServer = SideServer // the server workload's name (the backend's, for a Service)

	// Names of edge ends that are no workload.
	EdgeExternal = "external" // outside the cluster CIDRs
	EdgeUnknown  = "unknown"  // inside them, but nothing the cluster view knows

	MetricEdgeBytes        = "ebpfflow.edge.bytes"
	MetricEdgeConnections  = "ebpfflow.edge.connections"
	MetricEdgeConnFailures = "ebpfflow.edge.connection.failures"
	MetricEdgeRTT          = "ebpfflow.edge.rtt"
	MetricEdgeDrops        = "ebpfflow.edge.drops"
	MetricEdgeDNSLookups   = "ebpfflow.edge.dns.lookups"
)

// Network attributes shared by flows, drops and DNS lookups.
const (
	AttrTransport   = "network.transport"
	AttrNetworkType = "network.type"
	AttrSrcAddr     = "source.address"
	AttrSrcPort     = "source.port"
	AttrDstAddr     = "destination.address"
	AttrDstPort     = "destination.port"
	AttrIfName      = "network.interface.name"
	AttrConnState   = "network.connection.state"
	AttrIODirection = "network.io.direction"
	AttrClientAddr  = "client.address"
	AttrClientPort  = "client.port"
	AttrServerAddr  = "server.address"
	AttrServerPort  = "server.port"
	AttrErrorType   = "error.type"
)

// network.flow attributes.
const (
	AttrFlowSrcBytes   = "ebpfflow.flow.source.bytes"
	AttrFlowSrcPackets = "ebpfflow.flow.source.packets"
	AttrFlowDstBytes   = "ebpfflow.flow.destination.bytes"
	AttrFlowDstPackets = "ebpfflow.flow.destination.packets"
	AttrFlowLocalRole  = "ebpfflow.flow.local_role"
	AttrFlowCloseCause = "ebpfflow.flow.close_cause"
	AttrFlowVerdict    = "ebpfflow.flow.verdict"
	AttrFlowFinal      = "ebpfflow.flow.final"
	AttrFlowStartTime  = "ebpfflow.flow.start_time"
	AttrFlowEndTime    = "ebpfflow.flow.end_time"
	AttrDestScope      = "ebpfflow.destination.scope"
	AttrTCPRTT         = "ebpfflow.tcp.rtt"
	AttrTCPRetransmits = "ebpfflow.tcp.retransmits"
	AttrTCPResets      = "ebpfflow.tcp.resets"
)

// network.drop attributes.
const (
	AttrDropReason   = "ebpfflow.drop.reason"
	AttrDropCount    = "ebpfflow.drop.count"
	AttrDropBytes    = "ebpfflow.drop.bytes"
	AttrDropLocation = "ebpfflow.drop.location"
)

// dns.lookup attributes (the DNS span carries the same).
const (
	AttrDNSQuestionName = "dns.question.name"
	AttrDNSQuestionType = "ebpfflow.dns.question.type"
	AttrDNSID           = "ebpfflow.dns.id"
	AttrDNSRCode        = "ebpfflow.dns.response_code"
	AttrDNSAnswers      = "dns.answers"
	AttrDNSRecords      = "ebpfflow.dns.records"
	AttrDNSDuration     = "ebpfflow.dns.duration"
	AttrDNSRespAddr     = "ebpfflow.dns.responder.address"
	AttrDNSRespPort     = "ebpfflow.dns.responder.port"
	AttrDNSTruncated    = "ebpfflow.dns.truncated"
	AttrDNSRetransmits  = "ebpfflow.dns.retransmits"
)

// HTTP span attributes (with AttrHTTPMethod, AttrHTTPStatus,
// AttrServerAddr/Port, AttrClientAddr, AttrPeerAddr, AttrNetworkPeerPort,
// AttrErrorType below and above).
const (
	AttrHTTPMethodOriginal = "http.request.method_original"
	AttrURLPath            = "url.path"
	AttrURLScheme          = "url.scheme"
	AttrUserAgent          = "user_agent.original"
	AttrProtocolName       = "network.protocol.name"
	AttrProtocolVersion    = "network.protocol.version"
	AttrHTTPReqBodySize    = "http.request.body.size"
	AttrHTTPRespBodySize   = "http.response.body.size"
	AttrRPCSystem          = "rpc.system"
	AttrRPCService         = "rpc.service"
	AttrRPCMethod          = "rpc.method"
	AttrRPCGRPCStatus      = "rpc.grpc.status_code"
)

// Attribute values the contract fixes (enums with values of their own are
// named by their Go types' String methods).
const (
	VerdictForwarded = "forwarded"
	VerdictDropped   = "dropped"
	DirectionTx      = "transmit"
	DirectionRx      = "receive"
	DNSRCodeOK       = "NOERROR"
	DNSRCodeNXDomain = "NXDOMAIN"
	DNSRCodeTimeout  = "TIMEOUT"
	ProtocolHTTP     = "http" // network.protocol.name
	RPCSystemGRPC    = "grpc" // rpc.system
	HTTPMethodOther  = "_OTHER"
)

// anomaly record attributes.
const (
	AttrAnomalySignal   = "ebpfflow.anomaly.signal"
	AttrAnomalyMeasure  = "ebpfflow.anomaly.measure"
	AttrAnomalySeries   = "ebpfflow.anomaly.series"
	AttrAnomalyEdge     = "ebpfflow.anomaly.edge"
	AttrAnomalyObserved = "ebpfflow.anomaly.observed"
	AttrAnomalyExpected = "ebpfflow.anomaly.expected"
	AttrAnomalyUnit     = "ebpfflow.anomaly.unit"
	AttrAnomalyScore    = "ebpfflow.anomaly.score"
	AttrAnomalySince    = "ebpfflow.anomaly.since"
	AttrAnomalyState    = "ebpfflow.anomaly.state"
	AttrAnomalyID       = "ebpfflow.anomaly.id"
	AttrAnomalySignals  = "ebpfflow.anomaly.signals"
)

// Attributes the anomaly_detection components read from other sources'
// telemetry (HTTP spans, older semconv versions).
const (
	AttrHTTPStatus        = "http.response.status_code"
	AttrHTTPStatusV0      = "http.status_code"
	AttrHTTPMethod        = "http.request.method"
	AttrHTTPMethodV0      = "http.method"
	AttrPeerService       = "peer.service"
	AttrNetPeerName       = "net.peer.name"
	AttrPeerAddr          = "network.peer.address"
	AttrPodName           = "k8s.pod.name"
	AttrDeploymentName    = "k8s.deployment.name"
	AttrStatefulSetName   = "k8s.statefulset.name"
	AttrDaemonSetName     = "k8s.daemonset.name"
	AttrCronJobName       = "k8s.cronjob.name"
	AttrJobName           = "k8s.job.name"
	AttrK8sWorkloadName   = "k8s.workload.name"
	AttrK8sServiceName    = "k8s.service.name"
	AttrReplicaSetUID     = "k8s.replicaset.uid"
	AttrReplicaSetName    = "k8s.replicaset.name"
	AttrContainerRestarts = "k8s.container.restart_count"
	AttrProcessParentPID  = "process.parent_pid"
	AttrServiceInstanceID = "service.instance.id"
	AttrNetworkLocalPort  = "network.local.port"
	AttrNetworkPeerPort   = "network.peer.port"
)

// Metrics the receiver emits (cumulative, each series with its own start time).
const (
	MetricFlowBytes       = "ebpfflow.network.flow.bytes"
	MetricFlowPackets     = "ebpfflow.network.flow.packets"
	MetricTCPRTT          = "ebpfflow.tcp.rtt"
	MetricTCPRetransmits  = "ebpfflow.tcp.retransmits"
	MetricTCPResets       = "ebpfflow.tcp.resets"
	MetricTCPConnFailures = "ebpfflow.tcp.connection.failures"
	MetricDrops           = "ebpfflow.network.drops"
	MetricDNSDuration     = "dns.lookup.duration"
	MetricHTTPServerDur   = "http.server.request.duration"
	MetricHTTPClientDur   = "http.client.request.duration"
)

// Attribute keys of self-telemetry (collector internal metrics; the metric
// names themselves are declared in each component's metadata.yaml).
const (
	SelfAttrProbe    = "probe"
	SelfAttrCause    = "cause"
	SelfAttrReason   = "reason"
	SelfAttrState    = "state"
	SelfAttrResource = "resource" // a Kubernetes resource the cluster view watches
	SelfAttrResult   = "result"   // of a lookup
	SelfAttrOutcome  = "outcome"  // of an HTTP exchange
)
