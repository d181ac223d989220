"""The gateway study: worker memory, throughput, a killed worker and Ray replicas; reports/gateway/."""
