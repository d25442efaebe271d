import time

from django.core.management.base import BaseCommand

from scoring.services import job_progress, rescore_all_now


class Command(BaseCommand):
    help = "Score every lead now, in this process, under the ICP and scoring model in force."

    def handle(self, *args, **options):
        started = time.perf_counter()
        job = rescore_all_now(note="rescore_all command")
        progress = job_progress(job)
        self.stdout.write(
            f"Rescored {progress['processed']:,} leads in {time.perf_counter() - started:.1f} s."
        )
