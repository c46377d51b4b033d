/**
 * `fitsfleet ami bake`: the worker image from this fitsfleet, by one
 * command (ami/bake.ts).
 */
import { Command } from "commander";

import type { BakeResult } from "../../../ami/bake.js";
import { duration, wholeNumber } from "../../parse.js";
import { runContext } from "../../run.js";
import { onInterrupt } from "../../signals.js";
import { REGION_OPTION } from "../fleet/common.js";

interface BakeFlags {
  bundleLocation: string;
  baseImage?: string;
  instanceProfile: string;
  instanceType: string;
  subnet?: string;
  securityGroups?: string;
  rootVolumeGib?: string;
  kmsKeyId?: string;
  name?: string;
  readyTimeout: string;
  imageTimeout: string;
  interval: string;
  region?: string;
}

function describeBake(r: BakeResult): string {
  return [
    `image ${r.imageId} (${r.name}) baked in ${Math.round(r.seconds.total ?? 0)} s in ${r.region}`,
    `fitsfleet ${r.version}, commit ${r.commit}, from ${r.baseImage}`,
    `bundle ${r.bundle.location} (${(r.bundle.bytes / 1e6).toFixed(1)} MB, sha256 ${r.bundle.sha256})`,
    `the builder ${r.builder} was terminated; launch workers from it with \`fitsfleet rebuild launch-fleet --image latest …\``,
  ].join("\n");
}

export function bakeCommand(): Command {
  return new Command("bake")
    .description(
      "bake the worker image: upload this fitsfleet's bundle (npm pack and the production dependencies) with its sha256 to S3, launch a builder that installs Node.js, the bundle and the boot unit, image it, tag the image with the version, commit and bundle sha256, and terminate the builder; a failure leaves no builder, image or bundle behind",
    )
    .requiredOption(
      "--bundle-location <s3-url>",
      "where the bundle is uploaded, s3://bucket/prefix (the builder reads it with its instance profile)",
    )
    .option(
      "--base-image <ami>",
      "the image to build on (default: Debian 12's current amd64 image, from its public SSM parameter)",
    )
    .option(
      "--instance-profile <name>",
      "the builder's instance profile: it may read the bundle (s3:GetObject) and tag itself (ec2:CreateTags)",
      "fitsfleet-ami-builder",
    )
    .option(
      "--instance-type <type>",
      "the builder's instance type (x86_64)",
      "m5.large",
    )
    .option(
      "--subnet <id>",
      "the builder's subnet (default: the default VPC's); it needs the internet, or endpoints for S3 and EC2",
    )
    .option("--security-groups <list>", "security group ids, comma-separated")
    .option(
      "--root-volume-gib <n>",
      "the image's root volume size (default: the base image's)",
    )
    .option(
      "--kms-key-id <id>",
      "KMS key for the encrypted root volume (default: the account's EBS key)",
    )
    .option(
      "--name <name>",
      "the image's name (default: fitsfleet-VERSION-TIME-RANDOM)",
    )
    .option(
      "--ready-timeout <duration>",
      "how long the builder may take to install everything",
      "20m",
    )
    .option(
      "--image-timeout <duration>",
      "how long the image may take to become available",
      "45m",
    )
    .option(
      "--interval <duration>",
      "between checks of the builder and the image (500ms, 5s, 1m)",
      "5s",
    )
    .option(...REGION_OPTION)
    .action(async (flags: BakeFlags, command: Command) => {
      const { config, output } = await runContext(command);
      const region = (await import("../../../infra/aws.js")).awsRegion(
        flags.region,
      );
      const options = {
        region,
        bundleLocation: flags.bundleLocation,
        baseImage: flags.baseImage,
        instanceProfile: flags.instanceProfile,
        instanceType: flags.instanceType,
        subnet: flags.subnet,
        securityGroups: (flags.securityGroups ?? "")
          .split(",")
          .map((s) => s.trim())
          .filter((s) => s !== ""),
        rootVolumeGiB:
          flags.rootVolumeGib === undefined
            ? undefined
            : wholeNumber("--root-volume-gib", flags.rootVolumeGib, {
                min: 8,
                max: 16384,
              }),
        kmsKeyId: flags.kmsKeyId,
        name: flags.name,
        readyTimeoutMs: duration("--ready-timeout", flags.readyTimeout),
        imageTimeoutMs: duration("--image-timeout", flags.imageTimeout),
        pollMs: duration("--interval", flags.interval, 100),
      };
      const [{ bakeImage }, { parseS3Url }, { amiClients }] = await Promise.all(
        [
          import("../../../ami/bake.js"),
          import("../../../ami/images.js"),
          import("./common.js"),
        ],
      );
      parseS3Url(options.bundleLocation);
      const clients = await amiClients(region, config.s3Endpoint);
      // A signal stops the bake at its next check, and what it made is ended.
      const stop = new AbortController();
      const unregister = onInterrupt(() => stop.abort());
      try {
        const result = await bakeImage({
          ...clients,
          ...options,
          signal: stop.signal,
          onStep: (step, message) =>
            output.progress({ step, message }, `bake: ${message}`),
        });
        output.result(result, describeBake);
      } finally {
        unregister();
        clients.destroy();
      }
    });
}
