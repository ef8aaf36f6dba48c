package flowprobe

// DNSEvent is the header of a DNS capture record (bpf/dns/dns.h struct
// dns_event), which dnsprobe decodes.
type DNSEvent = flowDnsEvent

// DNSCapture is the most DNS payload bytes a record carries.
const DNSCapture = int(flowDnsLimitsDNS_CAPTURE)
