// SubjectAccessReview (authorization.k8s.io/v1) for the fake Kubernetes API server. The
// decision comes from a table of rules set by the test, in the spirit of RBAC: a rule names
// its subjects, its verbs, and either resources or non-resource paths. Nothing is allowed
// unless a rule allows it. Validation follows the real API server: the spec needs
// a user or groups, and exactly one of resourceAttributes and nonResourceAttributes.
import { StatusError } from './store.ts';

export const ACCESS_REVIEW_PATH = '/apis/authorization.k8s.io/v1/subjectaccessreviews';

export interface AccessRule {
  /** User names the rule applies to. */
  users?: readonly string[];
  /** Groups the rule applies to; a user in any of them matches. */
  groups?: readonly string[];
  /** Verbs such as get or list; '*' matches every verb. */
  verbs: readonly string[];
  /** API groups of a resource rule ('' is the core group); '*' matches every group. */
  apiGroups?: readonly string[];
  /** Resources of a resource rule; '*' matches every resource. */
  resources?: readonly string[];
  /** Namespaces a resource rule is limited to; unset: every namespace and the cluster scope. */
  namespaces?: readonly string[];
  /** Paths of a non-resource rule; an entry ending in '*' matches every path with that prefix. */
  nonResourceURLs?: readonly string[];
}

export interface ReviewSpec {
  user?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
  uid?: string;
  resourceAttributes?: { group?: string; version?: string; resource?: string; subresource?: string; namespace?: string; name?: string; verb?: string };
  nonResourceAttributes?: { path?: string; verb?: string };
}

export interface ReviewStatus {
  allowed: boolean;
  reason?: string;
}

/** The rule table and the reviews received, oldest first. */
export class AccessReviewer {
  readonly #rules: AccessRule[] = [];
  /** Every valid spec reviewed, oldest first. */
  readonly reviews: ReviewSpec[] = [];

  allow(rule: AccessRule): void {
    if ((rule.resources === undefined) === (rule.nonResourceURLs === undefined)) {
      throw new Error('an access rule needs exactly one of resources and nonResourceURLs');
    }
    if ((rule.users?.length ?? 0) + (rule.groups?.length ?? 0) === 0) throw new Error('an access rule needs users or groups');
    this.#rules.push(rule);
  }

  clearRules(): void {
    this.#rules.length = 0;
  }

  /** Validates a SubjectAccessReview body and returns the full object with its status. */
  review(body: unknown): Record<string, unknown> {
    const object = body as { kind?: unknown; apiVersion?: unknown; spec?: ReviewSpec } | null;
    if (object === null || typeof object !== 'object' || Array.isArray(object)) {
      throw new StatusError(400, 'BadRequest', 'the request body must be a SubjectAccessReview object');
    }
    if (object.kind !== undefined && object.kind !== 'SubjectAccessReview') {
      throw new StatusError(400, 'BadRequest', `the body's kind must be SubjectAccessReview, got ${JSON.stringify(object.kind)}`);
    }
    const spec = object.spec ?? {};
    const problems: string[] = [];
    if ((spec.user ?? '') === '' && (spec.groups ?? []).length === 0) problems.push('spec.user: Invalid value: "": at least one of user or group must be specified');
    if ((spec.resourceAttributes === undefined) === (spec.nonResourceAttributes === undefined)) {
      problems.push('spec.resourceAttributes: Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be specified');
    }
    if (problems.length > 0) throw new StatusError(422, 'Invalid', `SubjectAccessReview.authorization.k8s.io "" is invalid: ${problems.join(', ')}`);
    this.reviews.push(spec);
    const index = this.#rules.findIndex((rule) => matches(rule, spec));
    const status: ReviewStatus = index >= 0 ? { allowed: true, reason: `allowed by fake access rule ${index}` } : { allowed: false };
    return { kind: 'SubjectAccessReview', apiVersion: 'authorization.k8s.io/v1', metadata: { creationTimestamp: null }, spec, status };
  }
}

function matches(rule: AccessRule, spec: ReviewSpec): boolean {
  const subject = (spec.user !== undefined && (rule.users ?? []).includes(spec.user)) || (spec.groups ?? []).some((g) => (rule.groups ?? []).includes(g));
  if (!subject) return false;
  if (spec.nonResourceAttributes !== undefined) {
    const { path = '', verb = '' } = spec.nonResourceAttributes;
    if (rule.nonResourceURLs === undefined || !anyOf(rule.verbs, verb)) return false;
    return rule.nonResourceURLs.some((url) => (url.endsWith('*') ? path.startsWith(url.slice(0, -1)) : url === path));
  }
  const attributes = spec.resourceAttributes ?? {};
  if (rule.resources === undefined) return false;
  const resource = attributes.subresource ? `${attributes.resource ?? ''}/${attributes.subresource}` : (attributes.resource ?? '');
  return (
    anyOf(rule.verbs, attributes.verb ?? '') &&
    anyOf(rule.apiGroups ?? [''], attributes.group ?? '') &&
    anyOf(rule.resources, resource) &&
    (rule.namespaces === undefined || rule.namespaces.includes(attributes.namespace ?? ''))
  );
}

function anyOf(allowed: readonly string[], value: string): boolean {
  return allowed.includes('*') || allowed.includes(value);
}
