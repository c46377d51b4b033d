/**
 * What the ami commands share: their AWS clients, and how an image is
 * shown. The SDK is imported when a command runs, not when the tree is
 * built (cli/program.ts, start-up).
 */
import type { EC2Client } from "@aws-sdk/client-ec2";
import type { S3Client } from "@aws-sdk/client-s3";
import type { SSMClient } from "@aws-sdk/client-ssm";

import type { BakedImage } from "../../../ami/images.js";
import { table } from "../../output.js";

export interface AmiClients {
  ec2: EC2Client;
  ssm: SSMClient;
  s3: S3Client;
  destroy(): void;
}

/**
 * EC2 and SSM from infra/aws.ts; S3 at the configured endpoint
 * (--s3-endpoint, path style, as the storage's client) or AWS's.
 */
export async function amiClients(
  region: string,
  s3Endpoint: string | undefined,
): Promise<AmiClients> {
  const [{ ec2Client, ssmClient }, { S3Client }] = await Promise.all([
    import("../../../infra/aws.js"),
    import("@aws-sdk/client-s3"),
  ]);
  const [ec2, ssm] = await Promise.all([ec2Client(region), ssmClient(region)]);
  const s3 = new S3Client({
    region,
    ...(s3Endpoint === undefined
      ? {}
      : {
          endpoint: s3Endpoint,
          forcePathStyle: true,
          // Stores other than AWS often lack the newer checksum headers.
          requestChecksumCalculation: "WHEN_REQUIRED" as const,
          responseChecksumValidation: "WHEN_REQUIRED" as const,
        }),
  });
  return {
    ec2,
    ssm,
    s3,
    destroy() {
      ec2.destroy();
      ssm.destroy();
      s3.destroy();
    },
  };
}

export function imagesTable(
  images: readonly BakedImage[],
  current: string,
): string {
  return table(
    ["image", "name", "state", "created", "version", "commit", "bundle sha256"],
    images.map((i) => [
      i.id,
      i.name,
      i.state,
      i.created,
      i.version === current ? `${i.version} (this)` : i.version,
      (i.commit ?? "-").slice(0, 12) +
        ((i.commit ?? "").endsWith("-dirty") ? "-dirty" : ""),
      (i.sha256 ?? "-").slice(0, 16),
    ]),
  );
}
