from django.contrib import admin

from .models import Church, Fast, Profile


@admin.register(Church)
class ChurchAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(Fast)
class FastAdmin(admin.ModelAdmin):
    list_display = ["name", "church", "starts_on", "ends_on"]
    list_filter = ["church"]
    search_fields = ["name"]
    date_hierarchy = "starts_on"


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user"]
    search_fields = ["user__username"]
    autocomplete_fields = ["user"]
    filter_horizontal = ["fasts"]
