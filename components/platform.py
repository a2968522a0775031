"""Platform: the whole stack as one component, wired in the order of DESIGN.md's data-flow diagram."""

from __future__ import annotations

import pulumi
import pulumi_gitlab as gitlab
import pulumi_kubernetes as k8s

from components.attic import PORT as ATTIC_PORT
from components.attic import AtticServer
from components.attic_gc import AtticGarbageCollector
from components.bazel_cache import COMPONENT as BAZEL_COMPONENT
from components.bazel_cache import GRPC_PORT, HTTP_PORT, BazelRemoteCache
from components.bazel_cache import SERVICE_NAME as BAZEL_SERVICE
from components.ci_template import GreedyCiTemplate
from components.config import PlatformConfig
from components.contract import CacheContract
from components.database import AtticDatabase
from components.gitlab_variables import GroupCiVariables
from components.kube import selector_labels, standard_labels
from components.network_policies import (
    Endpoint,
    GuardedPods,
    IngressController,
    PlatformIngressPolicies,
    endpoint_ingress_rules,
    seaweedfs_ingress_rules,
)
from components.runners import RunnerFleet
from components.storage import COMPONENT as STORAGE_COMPONENT
from components.storage import (
    SEAWEEDFS,
    SEAWEEDFS_BUCKET_JOB,
    SEAWEEDFS_FILER_PORT,
    SEAWEEDFS_S3_PORT,
    ObjectStorage,
)


class Platform(pulumi.ComponentResource):
    """Cache services, the CacheContract built from them, and the GitLab side that consumes it."""

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flywheel:index:Platform", name, None, opts)
        self.config = config
        # Every text file the program renders (server.toml, config.toml, the CI template): path -> content.
        self.rendered_files: dict[str, pulumi.Input[str]] = {}
        self.outputs: dict[str, pulumi.Input[object]] = {"namespace": config.namespace}

        self.namespace = k8s.core.v1.Namespace(
            config.namespace,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=config.namespace, labels=standard_labels(config.namespace, "namespace")
            ),
            # The database and the cache volumes are retained on delete; deleting their namespace would take them
            # with it (the namespace controller deletes its contents), so `pulumi destroy` leaves it too.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )
        self.gitlab_provider = gitlab.Provider(
            "gitlab",
            base_url=config.gitlab.api_url,
            token=pulumi.Config("gitlab").get_secret("token"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])
        on_gitlab = pulumi.ResourceOptions(parent=self, provider=self.gitlab_provider)

        # --- object storage and database (components/storage.py, components/database.py) ---
        bazel_tier = config.bazel_cache.enabled and config.bazel_cache.s3_tier
        self.storage = ObjectStorage(
            "storage",
            config.storage,
            config.namespace,
            opts=in_namespace,
            bazel_retention_days=config.bazel_cache.s3_retention_days if bazel_tier else None,
        )
        self.database = AtticDatabase("attic-db", config.database, config.namespace, opts=in_namespace)
        self._publish(self.storage.rendered_files)
        self.outputs.update(
            {
                "storage_backend": config.storage.backend,
                "storage_endpoint": self.storage.endpoint,
                "storage_region": self.storage.region,
                "storage_bucket": self.storage.bucket,
                "database_backend": config.database.backend,
                "database_url_secret": self.database.url.name,
            }
        )

        # --- Attic server and GC worker (components/attic.py, components/attic_gc.py) ---
        self.attic = AtticServer(
            "attic",
            config.attic,
            config.namespace,
            s3=self.storage.attic_target,
            database_url=self.database.url,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.namespace, *self.storage.ready, *self.database.ready]
            ),
        )
        self.attic_gc = AtticGarbageCollector("attic-gc", config.attic, config.namespace, self.attic, opts=in_namespace)
        self._publish(self.attic.rendered_files)
        self.outputs.update(
            {
                "attic_url": self.attic.url,
                "attic_internal_url": self.attic.internal_url,
                "attic_cache": self.attic.cache_name,
                "attic_public_key": self.attic.public_key,
                "attic_ci_token": self.attic.ci_token,  # secret
            }
        )

        # --- bazel cache, the CacheContract, runners, group variables (bazel_cache, contract, runners,
        #     gitlab_variables) ---
        self.bazel_cache = (
            BazelRemoteCache(
                "bazel-cache",
                config.bazel_cache,
                config.namespace,
                s3=self.storage.bazel_target,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace, *self.storage.ready]),
            )
            if config.bazel_cache.enabled
            else None
        )
        self.contract = CacheContract(
            attic_url=self.attic.url,
            cache_name=self.attic.cache_name,
            public_key=self.attic.public_key,
            bazel_remote_cache=self.bazel_cache.grpc_url if self.bazel_cache else None,
        )
        attic_pods = Endpoint("attic", config.namespace, selector_labels(self.attic.name, "api-server"), (ATTIC_PORT,))
        bazel_pods = (
            [Endpoint("bazel-cache", config.namespace, selector_labels(BAZEL_SERVICE, BAZEL_COMPONENT), (GRPC_PORT,))]
            if self.bazel_cache
            else []
        )
        # atticd answers a single-chunk NAR with a 307 to a presigned URL on its S3 endpoint (attic
        # server/src/api/binary_cache.rs get_nar: `download_file_db(remote_file, false)` -> `Redirect::temporary`;
        # storage/s3.rs get_download presigns for 600 s): with SeaweedFS that is the in-cluster S3 Service, so job
        # pods must reach its S3 port. The presigned URL is the only S3 access they hold (no anonymous identity).
        seaweedfs_selector = selector_labels(SEAWEEDFS, STORAGE_COMPONENT)
        store_pods = (
            [Endpoint("seaweedfs-s3", config.namespace, seaweedfs_selector, (SEAWEEDFS_S3_PORT,))]
            if config.storage.backend == "seaweedfs"
            else []
        )
        controller = (
            IngressController(config.attic.ingress.controller_namespace, config.attic.ingress.controller_pod_labels)
            if config.attic.host
            else None
        )
        self.runners = RunnerFleet(
            "runners",
            config.runners,
            config.runner_fleet,
            config.gitlab,
            config.jobs_namespace,
            self.contract,
            self.gitlab_provider,
            opts=in_namespace,
            manager_namespace=config.namespace,
            job_endpoints=[attic_pods, *bazel_pods, *store_pods],
            ingress_controller=controller,
        )
        guarded = [
            GuardedPods(
                "attic", attic_pods.selector, endpoint_ingress_rules(attic_pods, config.jobs_namespace, controller)
            ),
            *(
                GuardedPods(
                    "bazel-cache",
                    pods.selector,
                    endpoint_ingress_rules(
                        Endpoint(pods.name, pods.namespace, pods.selector, (GRPC_PORT, HTTP_PORT)),
                        config.jobs_namespace,
                        None,
                    ),
                )
                for pods in bazel_pods
            ),
        ]
        if config.storage.backend == "seaweedfs":
            bucket_job = selector_labels(SEAWEEDFS_BUCKET_JOB, STORAGE_COMPONENT)
            rules = seaweedfs_ingress_rules(
                seaweedfs_selector, SEAWEEDFS_S3_PORT, bucket_job, SEAWEEDFS_FILER_PORT, config.jobs_namespace
            )
            guarded.append(GuardedPods("seaweedfs", seaweedfs_selector, rules))
        self.ingress_policies = PlatformIngressPolicies(
            "platform-network", config.namespace, guarded, opts=in_namespace
        )
        self.group_variables = GroupCiVariables(
            "group-variables", config.gitlab, self.contract, self.attic.ci_token, opts=on_gitlab
        )
        self._publish(self.runners.rendered_files)
        self.outputs.update(
            {
                "bazel_remote_cache": self.contract.bazel_remote_cache,
                "substrate_mode": self.contract.substrate_mode,
                "jobs_namespace": config.jobs_namespace,
                "runner_pools": sorted(self.runners.pools),
                "group_variables": sorted(self.group_variables.variables),
            }
        )

        # --- the greedy CI template (components/ci_template.py) ---
        self.ci_template = GreedyCiTemplate("ci-template", config.gitlab, config.ci_template, opts=on_gitlab)
        self._publish(self.ci_template.rendered_files)
        self.outputs["ci_component"] = self.ci_template.component

        self.register_outputs(self.outputs)

    def _publish(self, files: dict[str, pulumi.Input[str]]) -> None:
        overlap = files.keys() & self.rendered_files.keys()
        if overlap:
            raise ValueError(f"two components render the same file: {sorted(overlap)}")
        self.rendered_files.update(files)
