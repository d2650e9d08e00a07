// Name rules of Kubernetes objects that both the gateway and the autoscaler check in their
// configuration, as regular expression sources so TypeBox schemas and RegExp can use them.

/** Namespace name (DNS-1123 label): at most 63 lowercase letters, digits and inner hyphens. */
export const NAMESPACE_NAME_PATTERN = '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$';

/** Service name (DNS-1035 label): a namespace name that also starts with a letter. */
export const SERVICE_NAME_PATTERN = '^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$';
