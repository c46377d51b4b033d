/**
 * Least-privilege IAM policies for a fleet: one for the operator who
 * launches and ends it, one for the workers' instance role. Every EC2
 * resource the operator may create must carry the fitsfleet tag, may be
 * launched only with IMDSv2 required, and may be terminated or deleted only
 * while it carries that tag; the role it hands to instances is the worker
 * role and no other. Workers may read their secrets under the fleet's SSM
 * prefix, read the archive and write previews, nothing else.
 *
 * The operator's actions are exactly the calls of infra/ec2.ts and
 * infra/secrets.ts (and what EC2 authorises inside them: an instant
 * CreateFleet launches with RunInstances as its caller, tags at creation
 * with CreateTags, and passes the role). ssm:DescribeParameters is not
 * among them: `fleet secrets show` reads the two names with GetParameters,
 * without decryption, and DescribeParameters could not be limited to the
 * prefix anyway.
 *
 * The worker image has two more (amiPolicies): the operator's for `ami
 * bake`, `list`, `prune` and `sweep`, which may launch only a builder
 * tagged with its bake, IMDSv2 only, passing only the builder role, image
 * and end only what carries a bake's tag, and write only under the bundle
 * location; and the builder's instance role, which may read the bundles
 * and tag a builder, with its build-state tag only.
 *
 * KMS: with the AWS managed keys (aws/ssm for the secrets, the account's
 * EBS default) the key policies let the services act for the caller, and
 * no statement is needed. A customer managed key is named by its ARN, and
 * only then is it allowed, only through the service that uses it.
 */
import { UsageError } from "../lib/errors.js";

/** The tag every fitsfleet resource carries (its value: the fleet id). */
export const FLEET_TAG = "fitsfleet:fleet";

/** Where the fleet's secrets live in SSM Parameter Store. */
export const DEFAULT_SSM_PREFIX = "/fitsfleet/";

export interface PolicyStatement {
  Sid: string;
  Effect: "Allow";
  Action: string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: PolicyStatement[];
}

export interface IamPolicyOptions {
  /** The workers' role (and instance profile) name. */
  workerRole: string;
  /** Where the archive's files are: s3://bucket/prefix. */
  archive: string;
  /** Where previews go (s3://bucket/prefix); default previews/ under the archive. */
  previews?: string;
  /** SSM parameter path prefix for the fleet's secrets. */
  ssmPrefix?: string;
  /** AWS account id; default any (`*`) in ARNs. */
  account?: string;
  /** Region; default any (`*`) in ARNs. */
  region?: string;
  /** The AWS partition (aws, aws-cn, aws-us-gov). */
  partition?: string;
  /** The customer managed key of the secrets (`fleet secrets put --kms-key-id`), as an ARN. */
  secretsKmsKey?: string;
  /** The customer managed key of the root volumes (`rebuild launch-fleet --kms-key-id`), as an ARN. */
  volumeKmsKey?: string;
}

export interface IamPolicies {
  operator: PolicyDocument;
  worker: PolicyDocument;
}

interface S3Place {
  bucket: string;
  prefix: string;
}

function s3Place(
  flag: string,
  location: string,
  suggestion = "a fleet reads the archive from S3: give --storage s3://BUCKET/PREFIX",
): S3Place {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(
    location,
  );
  if (match === null) {
    throw new UsageError(
      `${flag} ${location}: an S3 location, s3://bucket or s3://bucket/prefix`,
      { suggestion },
    );
  }
  const prefix = (match[2] ?? "").replace(/^\/+|\/+$/g, "");
  return { bucket: match[1]!, prefix: prefix === "" ? "" : `${prefix}/` };
}

function checkName(flag: string, value: string, pattern: RegExp): string {
  if (!pattern.test(value)) {
    throw new UsageError(`${flag} ${value}: not a valid value`);
  }
  return value;
}

/** The partition, account and region the ARNs name, each checked. */
function checkScope(options: {
  partition?: string;
  account?: string;
  region?: string;
}): { partition: string; account: string; region: string } {
  return {
    partition: checkName(
      "--partition",
      options.partition ?? "aws",
      /^aws(-cn|-us-gov)?$/,
    ),
    account: checkName("--account", options.account ?? "*", /^(\*|\d{12})$/),
    region: checkName(
      "--region",
      options.region ?? "*",
      /^(\*|[a-z]{2}(-[a-z]+)+-\d)$/,
    ),
  };
}

export function iamPolicies(options: IamPolicyOptions): IamPolicies {
  const { partition, account, region } = checkScope(options);
  const role = checkName(
    "--worker-role",
    options.workerRole,
    /^[\w+=,.@-]{1,64}$/,
  );
  const ssmPrefix = `/${(options.ssmPrefix ?? DEFAULT_SSM_PREFIX).replace(/^\/+|\/+$/g, "")}/`;
  const archive = s3Place("--storage", options.archive);
  const previews =
    options.previews === undefined
      ? { bucket: archive.bucket, prefix: `${archive.prefix}previews/` }
      : s3Place("--previews", options.previews);
  const ec2 = (type: string) =>
    `arn:${partition}:ec2:${region}:${account}:${type}/*`;
  const tagged = { Null: { [`aws:ResourceTag/${FLEET_TAG}`]: "false" } };
  const requestTagged = {
    Null: { [`aws:RequestTag/${FLEET_TAG}`]: "false" },
  };
  const roleArn = `arn:${partition}:iam::${account}:role/${role}`;
  const parameters = `arn:${partition}:ssm:${region}:${account}:parameter${ssmPrefix}*`;
  const keyArn =
    /^arn:aws(-cn|-us-gov)?:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/;
  const secretsKey =
    options.secretsKmsKey === undefined
      ? undefined
      : checkName("--secrets-kms-key", options.secretsKmsKey, keyArn);
  const volumeKey =
    options.volumeKmsKey === undefined
      ? undefined
      : checkName("--volume-kms-key", options.volumeKmsKey, keyArn);
  const via = (service: string) => ({
    StringLike: { "kms:ViaService": `${service}.${region}.amazonaws.com` },
  });
  const operator: PolicyDocument = {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "DescribeAnything",
        Effect: "Allow",
        Action: [
          "ec2:DescribeFleets",
          "ec2:DescribeImages",
          "ec2:DescribeInstances",
          "ec2:DescribeInstanceTypes",
          "ec2:DescribeLaunchTemplates",
          "ec2:DescribeSpotPriceHistory",
          "ec2:DescribeSubnets",
        ],
        Resource: "*",
      },
      {
        Sid: "CreateOnlyTagged",
        Effect: "Allow",
        Action: ["ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
        Resource: [ec2("fleet"), ec2("launch-template")],
        Condition: requestTagged,
      },
      {
        Sid: "LaunchOnlyTaggedWithImdsV2",
        Effect: "Allow",
        Action: ["ec2:RunInstances"],
        Resource: [
          ec2("instance"),
          ec2("volume"),
          ec2("spot-instances-request"),
        ],
        Condition: {
          ...requestTagged,
          StringEquals: { "ec2:MetadataHttpTokens": "required" },
        },
      },
      {
        Sid: "LaunchFromTheseParts",
        Effect: "Allow",
        Action: ["ec2:RunInstances", "ec2:CreateFleet"],
        Resource: [
          `arn:${partition}:ec2:${region}::image/*`,
          ec2("subnet"),
          ec2("network-interface"),
          ec2("security-group"),
          ec2("key-pair"),
          ec2("launch-template"),
        ],
      },
      {
        Sid: "TagOnlyWhileCreating",
        Effect: "Allow",
        Action: ["ec2:CreateTags"],
        Resource: "*",
        Condition: {
          StringEquals: {
            "ec2:CreateAction": [
              "CreateFleet",
              "CreateLaunchTemplate",
              "RunInstances",
            ],
          },
        },
      },
      {
        Sid: "EndOnlyTagged",
        Effect: "Allow",
        Action: [
          "ec2:TerminateInstances",
          "ec2:DeleteFleets",
          "ec2:DeleteLaunchTemplate",
        ],
        Resource: [ec2("instance"), ec2("fleet"), ec2("launch-template")],
        Condition: tagged,
      },
      {
        Sid: "PassOnlyTheWorkerRole",
        Effect: "Allow",
        Action: ["iam:PassRole"],
        Resource: roleArn,
        Condition: {
          StringEquals: { "iam:PassedToService": "ec2.amazonaws.com" },
        },
      },
      {
        Sid: "FleetSecrets",
        Effect: "Allow",
        // Creating a parameter with its tag needs AddTagsToResource; `secrets
        // show` reads with GetParameters, never decrypting.
        Action: [
          "ssm:PutParameter",
          "ssm:AddTagsToResource",
          "ssm:GetParameters",
        ],
        Resource: parameters,
      },
      ...(secretsKey === undefined
        ? []
        : [
            {
              Sid: "EncryptFleetSecrets",
              Effect: "Allow" as const,
              // A standard SecureString is encrypted with kms:Encrypt.
              Action: ["kms:Encrypt"],
              Resource: secretsKey,
              Condition: via("ssm"),
            },
          ]),
      ...(volumeKey === undefined
        ? []
        : [
            {
              Sid: "EncryptRootVolumes",
              Effect: "Allow" as const,
              Action: [
                "kms:DescribeKey",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:ReEncrypt*",
                "kms:Decrypt",
              ],
              Resource: volumeKey,
              Condition: via("ec2"),
            },
            {
              Sid: "GrantRootVolumesTheirKey",
              Effect: "Allow" as const,
              // EC2 holds a grant on the key while the volume is attached.
              Action: ["kms:CreateGrant"],
              Resource: volumeKey,
              Condition: {
                ...via("ec2"),
                Bool: { "kms:GrantIsForAWSResource": "true" },
              },
            },
          ]),
    ],
  };
  const worker: PolicyDocument = {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "ReadFleetSecrets",
        Effect: "Allow",
        Action: [
          "ssm:GetParameter",
          "ssm:GetParameters",
          "ssm:GetParametersByPath",
        ],
        Resource: parameters,
      },
      ...(secretsKey === undefined
        ? []
        : [
            {
              Sid: "DecryptFleetSecrets",
              Effect: "Allow" as const,
              Action: ["kms:Decrypt"],
              Resource: secretsKey,
              Condition: via("ssm"),
            },
          ]),
      {
        Sid: "ListArchive",
        Effect: "Allow",
        Action: ["s3:ListBucket"],
        Resource: `arn:${partition}:s3:::${archive.bucket}`,
        Condition: { StringLike: { "s3:prefix": `${archive.prefix}*` } },
      },
      {
        Sid: "ReadArchive",
        Effect: "Allow",
        Action: ["s3:GetObject"],
        Resource: `arn:${partition}:s3:::${archive.bucket}/${archive.prefix}*`,
      },
      {
        Sid: "WritePreviews",
        Effect: "Allow",
        // Reading too: a preview that exists is kept, not rendered again.
        Action: ["s3:GetObject", "s3:PutObject"],
        Resource: `arn:${partition}:s3:::${previews.bucket}/${previews.prefix}*`,
      },
    ],
  };
  return { operator, worker };
}

/** The tag of everything a bake makes (ami/images.ts BUILD_TAG): its id. */
export const AMI_BUILD_TAG = "fitsfleet:ami-build";
/** The one tag a builder sets on itself (ami/bake.ts BUILD_STATE_TAG). */
export const AMI_BUILD_STATE_TAG = "fitsfleet:ami-build-state";
/** Debian's public SSM parameter naming its current Debian 12 image (ami/bake.ts). */
export const DEBIAN_12_PARAMETER_PATH =
  "aws/service/debian/release/12/latest/amd64";
export const DEFAULT_BUILDER_ROLE = "fitsfleet-ami-builder";

export interface AmiPolicyOptions {
  /** The builder's role (and instance profile) name. */
  builderRole?: string;
  /** Where bundles go (`ami bake --bundle-location`): s3://bucket/prefix. */
  bundleLocation: string;
  account?: string;
  region?: string;
  partition?: string;
  /** The customer managed key of the builder's root volume (`ami bake --kms-key-id`), as an ARN. */
  volumeKmsKey?: string;
}

export interface AmiPolicies {
  /** The operator's, for `fitsfleet ami bake`, `list`, `prune` and `sweep`. */
  ami: PolicyDocument;
  /** The builder instance's role. */
  builder: PolicyDocument;
}

/**
 * The actions are exactly the calls of ami/bake.ts, ami/images.ts and
 * ami/sweep.ts (and, for the builder, of ami/builder-aws.mjs);
 * test/ami/iam-policy.test.ts checks both against the code and against
 * the calls a bake, list, prune and sweep make on the loopback endpoint.
 */
export function amiPolicies(options: AmiPolicyOptions): AmiPolicies {
  const { partition, account, region } = checkScope(options);
  const role = checkName(
    "--builder-role",
    options.builderRole ?? DEFAULT_BUILDER_ROLE,
    /^[\w+=,.@-]{1,64}$/,
  );
  const bundles = s3Place(
    "--bundle-location",
    options.bundleLocation,
    "give the --bundle-location that `ami bake` uploads to",
  );
  const volumeKey =
    options.volumeKmsKey === undefined
      ? undefined
      : checkName(
          "--volume-kms-key",
          options.volumeKmsKey,
          /^arn:aws(-cn|-us-gov)?:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/,
        );
  const ec2 = (type: string) =>
    `arn:${partition}:ec2:${region}:${account}:${type}/*`;
  const image = `arn:${partition}:ec2:${region}::image/*`;
  const snapshot = `arn:${partition}:ec2:${region}:${account}:snapshot/*`;
  const tagged = { Null: { [`aws:ResourceTag/${AMI_BUILD_TAG}`]: "false" } };
  const requestTagged = {
    Null: { [`aws:RequestTag/${AMI_BUILD_TAG}`]: "false" },
  };
  const bundleObjects = `arn:${partition}:s3:::${bundles.bucket}/${bundles.prefix}*`;
  const via = {
    StringLike: { "kms:ViaService": `ec2.${region}.amazonaws.com` },
  };
  const ami: PolicyDocument = {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "AmiDescribe",
        Effect: "Allow",
        // Prune's check that no instance or fleet template uses an image included.
        Action: [
          "ec2:DescribeImages",
          "ec2:DescribeInstances",
          "ec2:DescribeLaunchTemplates",
          "ec2:DescribeLaunchTemplateVersions",
          "ec2:DescribeSnapshots",
        ],
        Resource: "*",
      },
      {
        Sid: "AmiDebianImage",
        Effect: "Allow",
        Action: ["ssm:GetParameter"],
        Resource: `arn:${partition}:ssm:${region}::parameter/${DEBIAN_12_PARAMETER_PATH}`,
      },
      {
        Sid: "AmiLaunchOnlyTaggedBuildersWithImdsV2",
        Effect: "Allow",
        Action: ["ec2:RunInstances"],
        Resource: [ec2("instance"), ec2("volume")],
        Condition: {
          ...requestTagged,
          StringEquals: { "ec2:MetadataHttpTokens": "required" },
        },
      },
      {
        Sid: "AmiLaunchFromTheseParts",
        Effect: "Allow",
        Action: ["ec2:RunInstances"],
        Resource: [
          image,
          ec2("subnet"),
          ec2("network-interface"),
          ec2("security-group"),
        ],
      },
      {
        Sid: "AmiImageOnlyTaggedBuilders",
        Effect: "Allow",
        Action: ["ec2:CreateImage"],
        Resource: ec2("instance"),
        Condition: tagged,
      },
      {
        Sid: "AmiCreateOnlyTaggedImages",
        Effect: "Allow",
        Action: ["ec2:CreateImage"],
        Resource: [image, snapshot],
        Condition: requestTagged,
      },
      {
        Sid: "AmiTagOnlyWhileCreating",
        Effect: "Allow",
        Action: ["ec2:CreateTags"],
        Resource: "*",
        Condition: {
          StringEquals: {
            "ec2:CreateAction": ["RunInstances", "CreateImage"],
          },
        },
      },
      {
        Sid: "AmiEndOnlyTagged",
        Effect: "Allow",
        // The console output: why a builder failed.
        Action: [
          "ec2:TerminateInstances",
          "ec2:GetConsoleOutput",
          "ec2:DeregisterImage",
          "ec2:DeleteSnapshot",
        ],
        Resource: [ec2("instance"), image, snapshot],
        Condition: tagged,
      },
      {
        Sid: "AmiPassOnlyTheBuilderRole",
        Effect: "Allow",
        Action: ["iam:PassRole"],
        Resource: `arn:${partition}:iam::${account}:role/${role}`,
        Condition: {
          StringEquals: { "iam:PassedToService": "ec2.amazonaws.com" },
        },
      },
      {
        Sid: "AmiBundles",
        Effect: "Allow",
        // Put a bundle and the bake's heartbeat; sweep reads heartbeats; bake, prune and sweep delete.
        Action: ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
        Resource: bundleObjects,
      },
      {
        Sid: "AmiListBundles",
        Effect: "Allow",
        Action: ["s3:ListBucket"],
        Resource: `arn:${partition}:s3:::${bundles.bucket}`,
        Condition: { StringLike: { "s3:prefix": `${bundles.prefix}*` } },
      },
      ...(volumeKey === undefined
        ? []
        : [
            {
              Sid: "AmiEncryptBuilderVolume",
              Effect: "Allow" as const,
              Action: [
                "kms:DescribeKey",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:ReEncrypt*",
                "kms:Decrypt",
              ],
              Resource: volumeKey,
              Condition: via,
            },
            {
              Sid: "AmiGrantBuilderVolumeItsKey",
              Effect: "Allow" as const,
              Action: ["kms:CreateGrant"],
              Resource: volumeKey,
              Condition: {
                ...via,
                Bool: { "kms:GrantIsForAWSResource": "true" },
              },
            },
          ]),
    ],
  };
  const builder: PolicyDocument = {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "ReadBundles",
        Effect: "Allow",
        Action: ["s3:GetObject"],
        Resource: bundleObjects,
      },
      {
        Sid: "TagOnlyBuildState",
        Effect: "Allow",
        // A builder says ready (or failed) on itself: only instances of a bake, only that tag.
        Action: ["ec2:CreateTags"],
        Resource: ec2("instance"),
        Condition: {
          ...tagged,
          "ForAllValues:StringEquals": { "aws:TagKeys": [AMI_BUILD_STATE_TAG] },
        },
      },
    ],
  };
  return { ami, builder };
}
